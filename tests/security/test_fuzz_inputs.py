"""Hostile input to the identifier validators and the calendar import (issue 9, item 3).

Property tests with hypothesis, derandomised so that CI runs the same examples every time:

- the validators of ``workflow.identifiers`` answer any text (NULs, BOMs, full-width digits, huge
  strings) with a message or None, never an exception, and agree with an independent statement of
  the standards (GB 11643's ISO 7064 MOD 11-2, GB 32100's mod 31 and GB 11714's mod 11) on random
  and on nearly valid text; a generated valid code with any one character changed, or two adjacent
  characters swapped, is refused;
- an application carrying any JSON value where an identifier goes is refused with ``Invalid``
  naming that field, or accepted in the form that validates;
- the calendar import, by each of its doors (``parse_csv``, ``POST /api/v1/calendar/import``, the
  admin page's upload and ``flask calendar import``), answers any bytes with success or a refusal
  that names the problem, never a crash, and a refused file leaves the calendar as it was; a valid
  schedule written with any line endings, quoting, header and BOM imports exactly.
"""
from __future__ import annotations

import csv
import datetime
import io
import re
import string
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from sqlalchemy import select

from tests.factories import application, csrf_token, sign_in
from workflow import calendar_days
from workflow.applications import ApplicationSchema
from workflow.errors import Invalid
from workflow.identifiers import (id_number_error, make_id_number, make_uscc, mobile_error, money_error,
                                  normalise_id_number, parse_money, uscc_error)
from workflow.models import CalendarDay, CalendarYear
from workflow.validation import load

# Deterministic in CI: derandomised (the examples follow from the test's source), no example
# database (a failure stored by one run would change the next run's examples), no deadline (the
# database examples run on a busy machine).
# A failing example of a huge field would otherwise fail on hypothesis's warning about its long repr.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow])
# The examples that go through the app and its database: fewer, and on the test's own app.
FUZZ_DB = settings(FUZZ, max_examples=80,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

TODAY = datetime.date(2024, 6, 15)  # any past day: the validators take today as an argument
DIGITS = "0123456789"
# GB 32100-2015, table 1: digits and capitals without I, O, S, V, Z.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


# ---------------------------------------------------------------- the standards, restated

def _ascii_digits(text: str) -> bool:
    return all(c in DIGITS for c in text)


def reference_id_number_valid(value: str, today: datetime.date) -> bool:
    """GB 11643-1999 as the standard words it, with the normalisation the module documents."""
    value = value.strip()
    if value.endswith("x"):
        value = value[:-1] + "X"
    if len(value) != 18 or not _ascii_digits(value[:17]) or value[17] not in DIGITS + "X":
        return False
    try:
        birth = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not datetime.date(1900, 1, 1) <= birth <= today:
        return False
    # ISO 7064 MOD 11-2: from the right, the check character first, weights 2**(i-1); sum ≡ 1 (mod 11).
    values = [10 if c == "X" else int(c) for c in reversed(value)]
    return sum(v * 2**i for i, v in enumerate(values)) % 11 == 1


def reference_uscc_valid(value: str) -> bool:
    """GB 32100-2015 (mod 31 over its alphabet) with the GB 11714 organisation code inside it."""
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value) or not _ascii_digits(value[2:8]):
        return False
    body, check = value[8:16], value[16]
    if check not in DIGITS + "X":
        return False
    # GB 11714: letters are worth 10 to 35; sum of value * 2**(9-i) plus the check (X = 10) ≡ 0 (mod 11).
    if (sum(int(c, 36) * 2 ** (8 - i) for i, c in enumerate(body)) + (10 if check == "X" else int(check))) % 11:
        return False
    values = [USCC_ALPHABET.index(c) for c in value]
    return (sum(v * 3**i for i, v in enumerate(values[:17])) + values[17]) % 31 == 0


def reference_mobile_valid(value: str) -> bool:
    return len(value) == 11 and _ascii_digits(value) and value[0] == "1" and value[1] in "3456789"


def reference_money_valid(value: str) -> bool:
    whole, dot, fraction = value.partition(".")
    if not whole or not _ascii_digits(whole) or (len(whole) > 1 and whole[0] == "0") or len(whole) > 15:
        return False
    return not dot or (0 < len(fraction) <= 2 and _ascii_digits(fraction))


# ---------------------------------------------------------------- strategies

# Text a form or a JSON body can carry: any character but lone surrogates, plus what tends to break
# parsers — NUL, BOM, full-width and other non-ASCII digits, line and paragraph separators.
TRICKY = "\x00\ufeff\r\n\t \u3000\u2028\u2029\x85０１２３９Ｘｘ٣۴߄१𝟘²¹xX-.,\"'<>&%"
any_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(DIGITS + USCC_ALPHABET + TRICKY)),
    st.sampled_from([20, 1_000, 100_000]).map(lambda n: "9" * n),
)
regions = st.text(alphabet=DIGITS, min_size=6, max_size=6)
births = st.dates(min_value=datetime.date(1900, 1, 1), max_value=TODAY)
id_numbers = st.builds(make_id_number, regions, births, st.integers(0, 999))
usccs = st.builds(make_uscc, st.sampled_from(USCC_ALPHABET), st.sampled_from(USCC_ALPHABET), regions,
                  st.text(alphabet=USCC_ALPHABET, min_size=8, max_size=8))
mobiles = st.builds(lambda second, rest: "1" + second + rest, st.sampled_from("3456789"),
                    st.text(alphabet=DIGITS, min_size=9, max_size=9))
any_character = st.one_of(st.characters(), st.sampled_from(DIGITS + USCC_ALPHABET + TRICKY + string.ascii_lowercase))


@st.composite
def edited(draw, valid):
    """A valid value with a few random edits: characters replaced, inserted, removed, swapped."""
    value = list(draw(valid))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, max(len(value) - 1, 0)))
        how = draw(st.sampled_from(["replace", "insert", "delete", "swap"]))
        if how == "replace" and value:
            value[position] = draw(any_character)
        elif how == "insert":
            value.insert(position, draw(any_character))
        elif how == "delete" and value:
            del value[position]
        elif how == "swap" and position + 1 < len(value):
            value[position], value[position + 1] = value[position + 1], value[position]
    return "".join(value)


def _substitute(value: str, position: int, character: str) -> str:
    return value[:position] + character + value[position + 1:]


# ---------------------------------------------------------------- identifiers

def _message_or_none(result) -> None:
    assert result is None or (isinstance(result, str) and result), result


@FUZZ
@given(st.one_of(any_text, edited(id_numbers)))
def test_id_numbers_any_text_is_judged_as_the_standard_says(text):
    result = id_number_error(text, today=TODAY)
    _message_or_none(result)
    assert (result is None) == reference_id_number_valid(text, TODAY), (text, result)


@FUZZ
@given(st.one_of(any_text, edited(usccs)))
def test_credit_codes_any_text_is_judged_as_the_standard_says(text):
    result = uscc_error(text)
    _message_or_none(result)
    assert (result is None) == reference_uscc_valid(text), (text, result)


@FUZZ
@given(st.one_of(any_text, edited(mobiles)))
def test_mobiles_any_text_is_judged_as_documented(text):
    result = mobile_error(text)
    _message_or_none(result)
    assert (result is None) == reference_mobile_valid(text), (text, result)


@FUZZ
@given(st.one_of(any_text, st.decimals(min_value=0, max_value=Decimal("1e16"), places=3).map(lambda d: f"{d:f}"),
                 st.from_regex(r"-?[0-9]{1,17}(\.[0-9]{0,3})?", fullmatch=True)))
def test_money_any_text_is_judged_as_documented_and_parses_exactly(text):
    result = money_error(text)
    _message_or_none(result)
    assert (result is None) == reference_money_valid(text), (text, result)
    if result is None:
        parsed = parse_money(text)
        assert parsed == Decimal(text) and parsed.as_tuple().exponent == -2
    else:
        with pytest.raises(ValueError):
            parse_money(text)


@FUZZ
@given(usccs, st.integers(0, 17), any_character)
def test_a_credit_code_with_any_one_character_changed_is_refused(code, position, character):
    assert uscc_error(code) is None
    if character != code[position]:
        assert uscc_error(_substitute(code, position, character)) is not None


@FUZZ
@given(usccs, st.integers(0, 15))
def test_a_credit_code_with_two_neighbours_swapped_is_refused(code, position):
    # The mod 31 check of position 18 catches any swap within positions 1 to 17 (weights 3**i, 31 prime).
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2:]
    if swapped != code:
        assert uscc_error(swapped) is not None


@FUZZ
@given(id_numbers, st.integers(0, 17), any_character)
def test_an_id_number_with_any_one_character_changed_is_refused(number, position, character):
    assert id_number_error(number, today=TODAY) is None
    changed = _substitute(number, position, character)
    if normalise_id_number(changed) != number:  # a lower-case check x is the same number, as documented
        assert id_number_error(changed, today=TODAY) is not None


@FUZZ
@given(id_numbers, st.integers(0, 15))
def test_an_id_number_with_two_neighbouring_digits_swapped_is_refused(number, position):
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2:]
    if swapped != number:
        assert id_number_error(swapped, today=TODAY) is not None


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=6,
)
IDENTIFIER_FIELDS = [("legal_representative", "id_number"), ("legal_representative", "phone"),
                     ("shareholders", "id_number"), ("shareholders", "contribution"),
                     ("company", "registered_capital")]


@FUZZ
@given(st.sampled_from(IDENTIFIER_FIELDS), st.one_of(json_values, id_numbers, mobiles, any_text.map(str.lower)))
def test_an_application_with_anything_in_an_identifier_is_refused_by_name_or_stored_valid(field, value):
    body = application()
    part, name = field
    target = body[part][0] if part == "shareholders" else body[part]
    body["shareholders"] = body["shareholders"][:1]
    body["shareholders"][0]["contribution"] = body["company"]["registered_capital"]
    target[name] = value
    if name in ("registered_capital", "contribution"):  # contributions must add up to the capital
        body["company"]["registered_capital"] = body["shareholders"][0]["contribution"] = value
    try:
        loaded = load(ApplicationSchema(), body)
    except Invalid as error:
        path = f"{part}.0.{name}" if part == "shareholders" else f"{part}.{name}"
        assert path in error.errors, error.errors
        return
    stored = loaded[part][0][name] if part == "shareholders" else loaded[part][name]
    if name == "id_number":
        assert id_number_error(stored) is None and stored == normalise_id_number(value)
    elif name == "phone":
        assert mobile_error(stored) is None and stored == value
    else:
        assert money_error(stored) is None and Decimal(stored) == Decimal(value)


# ---------------------------------------------------------------- the calendar file

HUGE = [65, 131_072, 131_073, 300_000]
csv_fragments = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\ufeff", "\x00", "\r", "\n", "\r\n", "\n\r", ",", ";", '"', '""', "\t", " ", "\u2028", "\x85",
                     "date,kind,name", "DATE , Kind", "holiday", "workday", "rest", "2027-01-01", "2027-02-29",
                     "2028-02-29", "20270101", "2027-W01-1", "0001-01-01", "9999-12-31", "+2027-01-01", "２０２７-01-01",
                     "元旦", "春节,调休"]),
    st.sampled_from(HUGE).map(lambda n: "x" * n),
    st.sampled_from(HUGE).map(lambda n: '"' + "名" * n + '"'),
)
csv_texts = st.lists(csv_fragments, max_size=30).map("".join)


def _check_rows(rows) -> None:
    for row in rows:
        assert isinstance(row["day"], datetime.date) and row["kind"] in calendar_days.KINDS
        assert isinstance(row["name"], str) and len(row["name"]) <= 64 and row["name"] == row["name"].strip()
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in row["name"]), row  # PostgreSQL refuses NUL


@FUZZ
@given(st.one_of(st.text(), csv_texts))
def test_any_text_parses_into_good_rows_or_is_refused_by_line(text):
    try:
        rows = calendar_days.parse_csv(text)
    except Invalid as error:
        assert error.errors and all(re.fullmatch(r"line \d+", key) for key in error.errors), error.errors
        assert all(messages for messages in error.errors.values())
        return
    _check_rows(rows)


names = st.text(alphabet=st.one_of(st.characters(blacklist_categories=("Cs", "Cc")), st.sampled_from(",\"'\t\r\n ")),
                max_size=64).map(str.strip)
days = st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2100, 12, 31))
schedules = st.lists(st.tuples(days, st.sampled_from(calendar_days.KINDS), names), min_size=1, max_size=25)


@st.composite
def csv_files(draw, schedule):
    """The schedule as a spreadsheet or a hand might write it: any line endings, mixed; quoted or not;
    with or without a header, a BOM, blank lines and a last line ending."""
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    lines = [["date", "kind", "name"]] if draw(st.booleans()) else []
    lines += [[day.isoformat(), kind, name] for day, kind, name in schedule]
    out = io.StringIO()
    for line in lines:
        ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        # Python's writer quotes a line break only when it is in the line ending: quote them all.
        quote = csv.QUOTE_ALL if any(c in cell for cell in line for c in "\r\n") else quoting
        csv.writer(out, quoting=quote, lineterminator=ending).writerow(line)
        if draw(st.integers(0, 9)) == 0:
            out.write(ending)  # a blank line
    text = out.getvalue()
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return ("\ufeff" if draw(st.booleans()) else "") + text


@st.composite
def schedule_files(draw):
    schedule = draw(schedules)
    return schedule, draw(csv_files(schedule))


def _expected(schedule) -> dict:
    """What the calendar holds after importing ``schedule``: the last entry of each day wins."""
    return {day: (kind, name) for day, kind, name in schedule}


@FUZZ
@given(schedule_files())
def test_a_valid_schedule_in_any_csv_dialect_parses_exactly(case):
    schedule, text = case
    rows = calendar_days.parse_csv(text)
    assert [(r["day"], r["kind"], r["name"]) for r in rows] == schedule


# Through the app: the REST import, the admin page's upload, the command line.

def _calendar(engine) -> tuple[dict, set]:
    with engine.connect() as conn:
        days = {row.day: (row.kind, row.name) for row in conn.execute(select(CalendarDay))}
        years = set(conn.scalars(select(CalendarYear.year)))
    return days, years


def _encodings(text: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "gb18030", "big5", "latin-1"]).map(
        lambda name: text.encode(name, errors="replace"))


any_bytes = st.one_of(
    st.binary(max_size=3000),
    csv_texts.map(lambda t: t.encode("utf-8", errors="surrogatepass")),
    schedule_files().flatmap(lambda case: _encodings(case[1])),
    schedule_files().map(lambda case: case[1].encode("utf-8") + b"\n2027-01-01,holiday,\xff\xfe"),
)


def _assert_outcome(ok: bool, before, after, data: bytes) -> None:
    """A refusal changes nothing; an import stores only good days and confirms their years."""
    if not ok:
        assert after == before, "a refused file changed the calendar"
        return
    days, years = after
    changed = {day for day, entry in days.items() if before[0].get(day) != entry}
    _check_rows([{"day": day, "kind": kind, "name": name} for day, (kind, name) in days.items()])
    assert {day.year for day in changed} <= years
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pytest.fail("a file that is not UTF-8 was imported (its text would be stored garbled)")


@pytest.fixture
def admin_token(factory):
    return factory.token("admin", None)


@FUZZ_DB
@given(data=any_bytes)
def test_any_bytes_posted_to_the_import_are_imported_or_refused_whole(client, engine, admin_token, data):
    before = _calendar(engine)
    response = client.post("/api/v1/calendar/import", data=data, content_type="text/csv",
                           headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code in (200, 413, 422), response.get_data(as_text=True)[:500]
    event(f"answered {response.status_code}")
    if response.status_code == 422:
        assert response.mimetype == "application/problem+json" and response.json["errors"]
    _assert_outcome(response.status_code == 200, before, _calendar(engine), data)


BAD_LINES = ["2027-02-30,holiday,不存在的日子", "2027-01-01,rest,元旦", "2027-01-01,holiday," + "名" * 65,
             "2027-01-01,holiday,元\x00旦", "2027-01-01,holiday,元旦,多余", "元旦,2027-01-01,holiday",
             '2027-01-01,holiday,"' + "x" * 200_000 + '"']


@FUZZ_DB
@given(case=schedule_files(), bad=st.sampled_from(BAD_LINES), data=st.data())
def test_one_bad_line_anywhere_imports_nothing_and_is_named(client, engine, admin_token, case, bad, data):
    schedule, text = case
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if any(line.count('"') % 2 for line in lines):  # a quoted line break: keep to files of one line per day
        lines = [f"{day.isoformat()},{kind},{name.replace(chr(34), '')}" for day, kind, name in schedule]
        lines = [re.sub(r"[\r\n]", " ", line) for line in lines]
    at = data.draw(st.integers(0, len(lines)), label="bad line's index")
    lines.insert(at, bad)
    before = _calendar(engine)
    response = client.post("/api/v1/calendar/import", data="\n".join(lines).encode("utf-8"), content_type="text/csv",
                           headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert f"line {at + 1}" in response.json["errors"], response.json["errors"]
    assert _calendar(engine) == before


@FUZZ_DB
@given(case=schedule_files())
def test_a_valid_schedule_posted_to_the_import_is_stored_exactly(client, engine, admin_token, case):
    schedule, text = case  # with a BOM or without
    before_days, _ = _calendar(engine)
    response = client.post("/api/v1/calendar/import", data=text.encode("utf-8"), content_type="text/csv",
                           headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.json["days"] == len(schedule)
    days, years = _calendar(engine)
    assert days == {**before_days, **_expected(schedule)}
    assert {day.year for day, _kind, _name in schedule} <= years


@pytest.fixture
def admin_page(client, factory):
    """Sign the test client in as an admin; the session's CSRF token (valid as long as the session)."""
    admin = factory.actor("admin", None)
    assert sign_in(client, admin.username).status_code == 302
    return csrf_token(client, "/admin/calendar?year=2027")


@settings(FUZZ_DB, max_examples=40)  # a refusal draws the year's calendar page again
# Up to 400 KB: werkzeug's test client spools a larger multipart body to a temporary file that it
# never closes (a ResourceWarning, werkzeug issue #1785). Huge fields are tried through the REST import.
@given(data=any_bytes.map(lambda data: data[:400_000]))
def test_any_file_uploaded_on_the_admin_page_is_imported_or_refused_whole(client, engine, admin_page, data):
    token = admin_page
    before = _calendar(engine)
    response = client.post("/admin/calendar/import", content_type="multipart/form-data",
                           data={"csrf_token": token, "year": "2027", "file": (io.BytesIO(data), "days.csv")})
    assert response.status_code in (303, 413, 422), response.get_data(as_text=True)[:500]  # 413: over 1 MiB
    event(f"answered {response.status_code}")
    if response.status_code == 422:
        assert 'role="alert"' in response.get_data(as_text=True)
    _assert_outcome(response.status_code == 303, before, _calendar(engine), data)


@FUZZ_DB
@given(data=any_bytes)
def test_any_file_given_to_the_command_line_is_imported_or_refused_with_a_message(app, engine, tmp_path, data):
    path = tmp_path / "days.csv"
    path.write_bytes(data)
    before = _calendar(engine)
    result = app.test_cli_runner().invoke(args=["calendar", "import", str(path)])
    # A refusal is click's "Error: …" and exit status 1; any other exception is a crash with a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1)
    event(f"exit status {result.exit_code}")
    if result.exit_code:
        assert "Error: " in result.output, result.output
    _assert_outcome(result.exit_code == 0, before, _calendar(engine), data)
