import datetime
import decimal

import pytest
from hypothesis import given, strategies as st

from workflow.identifiers import (
    id_number_error,
    make_id_number,
    make_uscc,
    mask_id_number,
    mobile_error,
    money_error,
    normalise_id_number,
    parse_money,
    uscc_error,
)

DIGITS = "0123456789"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
TODAY = datetime.date(2024, 6, 15)

regions = st.text(alphabet=DIGITS, min_size=6, max_size=6)
id_numbers = st.builds(
    make_id_number,
    regions,
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date.today()),
    st.integers(min_value=0, max_value=999),
)
usccs = st.builds(
    make_uscc,
    st.sampled_from(USCC_ALPHABET),
    st.sampled_from(USCC_ALPHABET),
    regions,
    st.text(alphabet=USCC_ALPHABET, min_size=8, max_size=8),
)


def substitute(value: str, position: int, replacement: str) -> str:
    return value[:position] + replacement + value[position + 1 :]


# Resident ID numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002X",  # the worked example of GB 11643-1999
        "11010519491231002x",  # lower-case check character is accepted
        " 11010519491231002X\u3000",  # so is surrounding (including ideographic) space
        "440106200002290016",  # 29 February of a leap year
        "440106190001010012",  # earliest allowed birth date
        "440106202406150019",  # born on the reference day itself
    ],
)
def test_id_number_valid(value: str) -> None:
    assert id_number_error(value, today=TODAY) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be 18 characters"),
        ("11010519491231002", "must be 18 characters"),
        ("11010519491231002X0", "must be 18 characters"),
        ("110105194912310A2X", "first 17 characters must be digits"),
        # Full-width digits look right on screen but are not ASCII digits.
        ("１１０１０５１９４９１２３１００２Ｘ", "first 17 characters must be digits"),
        ("11010519491231002Y", "last character must be a digit or X"),
        ("440106199013321230", "birth date 19901332 is not a real date"),
        ("440106190002290010", "birth date 19000229 is not a real date"),
        ("440106000001010010", "birth date 00000101 is not a real date"),
        # The second worked example of GB 11643-1999: its check digit is right, but 1880
        # is outside the range this service accepts.
        ("440524188001010014", "birth date 18800101 is before 1900-01-01"),
        ("440106202406160014", "birth date 20240616 is in the future"),
        ("110105194912310021", "check digit does not match"),
        ("110105194912310121", "check digit does not match"),
    ],
)
def test_id_number_invalid(value: str, message: str) -> None:
    assert id_number_error(value, today=TODAY) == message


def test_id_number_future_check_defaults_to_today() -> None:
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    first17 = f"110105{tomorrow:%Y%m%d}002"
    # Any check character will do: the date is reported before the check digit.
    assert id_number_error(first17 + "0") == f"birth date {tomorrow:%Y%m%d} is in the future"


def test_normalise_id_number() -> None:
    assert normalise_id_number(" 11010519491231002x\u3000") == "11010519491231002X"
    assert normalise_id_number("440106199001011234") == "440106199001011234"


def test_make_id_number_reproduces_standard_example() -> None:
    assert make_id_number("110105", datetime.date(1949, 12, 31), 2) == "11010519491231002X"


@pytest.mark.parametrize(
    ("region", "birth", "sequence", "message"),
    [
        ("11010", datetime.date(1990, 1, 1), 1, "region must be 6 digits"),
        ("11010a", datetime.date(1990, 1, 1), 1, "region must be 6 digits"),
        ("110105", datetime.date(1899, 12, 31), 1, "birth date must be between"),
        (
            "110105",
            datetime.date.today() + datetime.timedelta(days=1),
            1,
            "birth date must be between",
        ),
        ("110105", datetime.date(1990, 1, 1), 1000, "sequence must be between 0 and 999"),
        ("110105", datetime.date(1990, 1, 1), -1, "sequence must be between 0 and 999"),
    ],
)
def test_make_id_number_rejects_bad_parts(
    region: str, birth: datetime.date, sequence: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_id_number(region, birth, sequence)


@given(regions, st.dates(min_value=datetime.date(1900, 1, 1)), st.integers(0, 999))
def test_generated_id_numbers_validate(region: str, birth: datetime.date, sequence: int) -> None:
    if birth > datetime.date.today():
        with pytest.raises(ValueError):
            make_id_number(region, birth, sequence)
        return
    number = make_id_number(region, birth, sequence)
    assert id_number_error(number) is None
    assert number[:6] == region
    assert number[6:14] == f"{birth:%Y%m%d}"
    assert int(number[14:17]) == sequence


@given(id_numbers)
def test_generated_id_numbers_satisfy_iso_7064(number: str) -> None:
    # ISO 7064 MOD 11-2 counts positions from the right, the check character first, weights
    # them 2**(i - 1) and requires the weighted sum to be 1 mod 11: an independent
    # statement of the rule that the module implements with a table of weights.
    values = [10 if character == "X" else int(character) for character in reversed(number)]
    assert sum(value * 2**i for i, value in enumerate(values)) % 11 == 1


@given(id_numbers, st.integers(min_value=0, max_value=17), st.data())
def test_id_number_single_substitution_is_detected(
    number: str, position: int, data: st.DataObject
) -> None:
    allowed = DIGITS + "X" if position == 17 else DIGITS
    replacement = data.draw(st.sampled_from([c for c in allowed if c != number[position]]))
    assert id_number_error(substitute(number, position, replacement)) is not None


# Masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("440106199001011234", "4401**********1234"),
        ("11010519491231002X", "1101**********002X"),
        ("440106900101123", "44***********23"),  # legacy 15-digit number
        ("12345678", "12****78"),
        ("1234567", "1*****7"),
        ("1234", "1**4"),
        ("123", "***"),
        ("", ""),
    ],
)
def test_mask_id_number(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked


@given(st.text(alphabet=DIGITS + "X", min_size=18, max_size=18))
def test_mask_reveals_at_most_eight_of_eighteen(number: str) -> None:
    masked = mask_id_number(number)
    assert len(masked) == 18
    assert sum(character != "*" for character in masked) <= 8


@given(st.text(alphabet=st.characters(exclude_characters="*")))
def test_mask_reveals_at_most_half_and_only_in_place(value: str) -> None:
    masked = mask_id_number(value)
    assert len(masked) == len(value)
    revealed = [(m, v) for m, v in zip(masked, value) if m != "*"]
    assert len(revealed) <= len(value) / 2
    assert all(m == v for m, v in revealed)


# Unified social credit codes -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "91350100M000100Y43",  # the worked example of GB 32100-2015
        "91440300708461136T",  # Shenzhen Tencent Computer Systems Co., Ltd.
        # Published by a Shanghai trading company; its organisation code has letters past H,
        # whose GB 11714 values (base 36) differ from their place in the USCC alphabet.
        "91310000MAERED2X1W",
        # Listed as valid in public validator test suites; its organisation code check
        # character is X, the case where GB 11714 maps 10 to a letter.
        "1134082855783407XL",
    ],
)
def test_uscc_valid(value: str) -> None:
    assert uscc_error(value) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be 18 characters"),
        ("91350100M000100Y4", "must be 18 characters"),
        ("91350100M000100Y433", "must be 18 characters"),
        ("91350100M000100Y42", "check character (position 18) does not match"),
        ("91350100M000100Y53", "organisation code check character (position 17) does not match"),
        ("91350100N000100Y43", "organisation code check character (position 17) does not match"),
        (
            "9135010AM000100Y43",
            "positions 3 to 8 must be digits (the administrative division code)",
        ),
    ],
)
def test_uscc_invalid(value: str, message: str) -> None:
    assert uscc_error(value) == message


@pytest.mark.parametrize(
    ("value", "start"),
    [
        # The standard's own example of a code that fails: Z is never used.
        ("91350100M000100Y4Z", "character 'Z' at position 18 is not allowed"),
        ("91350100m000100Y43", "character 'm' at position 9 is not allowed"),
        ("9135010OM000100Y43", "character 'O' at position 8 is not allowed"),
        ("91350100M000100Y4 ", "character ' ' at position 18 is not allowed"),
    ],
)
def test_uscc_rejects_characters_outside_alphabet(value: str, start: str) -> None:
    error = uscc_error(value)
    assert error is not None
    assert error.startswith(start)


def test_make_uscc_reproduces_standard_example() -> None:
    assert make_uscc("9", "1", "350100", "M000100Y") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("", "1", "350100", "M000100Y"), "authority must be one character"),
        (("91", "1", "350100", "M000100Y"), "authority must be one character"),
        (("I", "1", "350100", "M000100Y"), "authority must be one character"),
        (("9", "S", "350100", "M000100Y"), "organisation type must be one character"),
        (("9", "1", "35010", "M000100Y"), "region must be 6 digits"),
        (("9", "1", "35010A", "M000100Y"), "region must be 6 digits"),
        (("9", "1", "350100", "M000100"), "organisation code body must be 8 characters"),
        (("9", "1", "350100", "M00010OY"), "organisation code body must be 8 characters"),
    ],
)
def test_make_uscc_rejects_bad_parts(parts: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_uscc(*parts)


@given(usccs)
def test_generated_usccs_validate(code: str) -> None:
    assert uscc_error(code) is None


@given(usccs)
def test_generated_usccs_satisfy_both_check_equations(code: str) -> None:
    # The two standards define their check characters by these congruences; the weights are
    # written here as powers (2**(9 - i) mod 11 and 3**(i - 1) mod 31) rather than tables.
    org_values = [int(character, 36) for character in code[8:16]]
    org_check = 10 if code[16] == "X" else int(code[16])
    assert (sum(v * 2 ** (8 - i) for i, v in enumerate(org_values)) + org_check) % 11 == 0
    values = [USCC_ALPHABET.index(character) for character in code]
    assert (sum(v * 3**i for i, v in enumerate(values[:17])) + values[17]) % 31 == 0


def test_make_uscc_maps_remainders_to_zero() -> None:
    # With every weighted sum 0, GB 11714 gives 11 - 0 = 11, written '0', and GB 32100 gives
    # 31 - 0 = 31, which is taken mod 31 to 0: the two wrap-around cases of the standards.
    assert make_uscc("0", "0", "000000", "00000000") == "000000000000000000"
    assert uscc_error("000000000000000000") is None


@given(usccs, st.integers(min_value=0, max_value=17), st.data())
def test_uscc_single_substitution_is_detected(
    code: str, position: int, data: st.DataObject
) -> None:
    replacement = data.draw(st.sampled_from([c for c in USCC_ALPHABET if c != code[position]]))
    assert uscc_error(substitute(code, position, replacement)) is not None


# Mobile numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["13800138000", "14712345678", "19912345678"])
def test_mobile_valid(value: str) -> None:
    assert mobile_error(value) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be 11 digits"),
        ("1380013800", "must be 11 digits"),
        ("138001380000", "must be 11 digits"),
        ("138-0013-800", "must be 11 digits"),
        ("+8613800138000", "must be 11 digits"),
        ("１３８００１３８０００", "must be 11 digits"),
        ("12800138000", "must start with 13, 14, 15, 16, 17, 18 or 19"),
        ("23800138000", "must start with 13, 14, 15, 16, 17, 18 or 19"),
    ],
)
def test_mobile_invalid(value: str, message: str) -> None:
    assert mobile_error(value) == message


@given(st.sampled_from("3456789"), st.text(alphabet=DIGITS, min_size=9, max_size=9))
def test_generated_mobiles_validate(second: str, rest: str) -> None:
    assert mobile_error("1" + second + rest) is None


# Money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1000000.00", "1000000.00"),
        ("0.5", "0.50"),
        ("0", "0.00"),
        ("12.3", "12.30"),
        ("999999999999999.99", "999999999999999.99"),
    ],
)
def test_parse_money_valid(value: str, parsed: str) -> None:
    assert money_error(value) is None
    assert str(parse_money(value)) == parsed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be a decimal number such as 1000000.00"),
        ("abc", "must be a decimal number such as 1000000.00"),
        ("1e3", "must be a decimal number such as 1000000.00"),
        ("1,000", "must be a decimal number such as 1000000.00"),
        (".5", "must be a decimal number such as 1000000.00"),
        ("5.", "must be a decimal number such as 1000000.00"),
        ("+5", "must be a decimal number such as 1000000.00"),
        ("007", "must be a decimal number such as 1000000.00"),
        (" 5", "must be a decimal number such as 1000000.00"),
        ("5\n", "must be a decimal number such as 1000000.00"),
        ("NaN", "must be a decimal number such as 1000000.00"),
        ("١٢", "must be a decimal number such as 1000000.00"),
        ("-1", "must not be negative"),
        ("-0.01", "must not be negative"),
        ("1.005", "must have at most two decimal places"),
        ("1000000000000000", "must have at most 15 digits before the decimal point"),
    ],
)
def test_money_invalid(value: str, message: str) -> None:
    assert money_error(value) == message
    with pytest.raises(ValueError, match=message):
        parse_money(value)


def test_parse_money_is_exact_under_low_precision_context() -> None:
    with decimal.localcontext(decimal.Context(prec=5)):
        assert str(parse_money("123456789012345.67")) == "123456789012345.67"


@given(
    st.decimals(
        min_value=0,
        max_value=decimal.Decimal("999999999999999.99"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_money_round_trips(amount: decimal.Decimal) -> None:
    text = f"{amount:f}"
    assert money_error(text) is None
    parsed = parse_money(text)
    assert parsed == amount
    assert parsed.as_tuple().exponent == -2
