"""Fill a PostgreSQL database with N company-opening cases and a year of realistic histories.

The database must be migrated to head (``flask --app wsgi db upgrade``, or ``--migrate`` here) and
hold no case. The script publishes ``company_opening`` v1, creates six clerks and a supervisor per
agency, then writes the cases and their five steps with ``COPY … FROM STDIN`` (psycopg 3's
``cursor.copy``), streamed in chunks:

- acceptances spread uniformly over the hall's working time of the year before ``--now`` (working
  days from chinese-calendar, sessions 09:00–12:00 and 13:30–17:30), case numbers per hall day;
- ``registration`` first, then ``seal``, ``tax`` and ``bank`` in parallel, ``invoice`` after ``tax``;
  ``seal`` (80 %), ``invoice`` (70 %) and ``bank`` (85 %) wanted or ``skipped``;
- each step's elapsed working minutes drawn from a log-normal around a median below its target
  (registration 55 of 90, seal 35, tax 30, invoice 25, bank 40 of 60), so 5–20 % of each step breach;
  done times are those working minutes after the step became ready, on the same working-time axis;
- 5 % of cases suspended (容缺/补正) for 1–30 working hours after registration: the wall clock moves
  on, the elapsed minutes do not; 1 % refused at registration (case ``rejected``);
- a case is ``ready`` (its elapsed minutes fixed) when its last wanted step is done, ``delivered``
  some working minutes later; work still running at ``--now`` stays open (steps ready, no minutes);
- steps' holders are random clerks of the step's agency; SLA statuses follow the minutes.

No audit events, timers or notifications are written: the elapsed report does not read them.
Run: ``bin/with-postgres sh -c '.venv/bin/python bench/generate.py --migrate --cases 1000000'``
(the URL comes from ``--database-url``, ``DATABASE_URL`` or ``TEST_DATABASE_URL``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow.calendar import HALL_TZ, BusinessCalendar  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402
from workflow.definitions import store  # noqa: E402

DAY_MINUTES = 420  # 09:00–12:00 and 13:30–17:30
MORNING_MINUTES = 180
# step: (department, wanted share, median elapsed working minutes, log-normal sigma)
STEPS = {
    "registration": ("market_regulation", 1.0, 55.0, 0.45),
    "seal": ("public_security", 0.80, 35.0, 0.45),
    "tax": ("taxation", 1.0, 30.0, 0.55),
    "invoice": ("taxation", 0.70, 25.0, 0.60),
    "bank": ("bank", 0.85, 40.0, 0.40),
}
POSITION = {key: i for i, key in enumerate(STEPS)}
NEEDS = {"registration": "[]", "seal": '["registration"]', "tax": '["registration"]', "invoice": '["tax"]',
         "bank": '["registration"]'}
CLERKS = 6
SUSPENDED_SHARE, REFUSED_SHARE = 0.05, 0.01
CHUNK = 20_000

CASE_COLUMNS = ("id", "case_no", "tracking_code", "state", "version", "definition_name", "definition_version",
                "channel", "company_name", "company_kind", "application", "missing_materials", "delivery",
                "closing_reason", "created_at", "updated_at", "accepted_at", "ready_at", "delivered_at", "closed_at",
                "chain_seq", "chain_hash", "sla_status", "elapsed_minutes")
STEP_COLUMNS = ("id", "case_id", "key", "position", "department", "needs", "state", "assignee_id", "ready_at",
                "claimed_at", "done_at", "outputs", "refusal_reason", "sla_status", "elapsed_minutes")
APPLICATION = ('{{"company": {{"name": "{name}", "kind": "llc", "registered_capital": "1000000.00", '
               '"address": "广州市白云区云城西路{n}号", "business_scope": "软件开发；信息技术咨询服务"}}, '
               '"legal_representative": {{"name": "张三", "id_number": "11010519491231002X", '
               '"phone": "13800138000"}}, "shareholders": [{{"name": "张三", "id_number": "11010519491231002X", '
               '"contribution": "1000000.00"}}], "wants": {wants}, "channel": "window"}}')
OUTPUTS = {
    "registration": '{{"uscc": "91440111MA{n:08d}", "licence_no": "440111{n:09d}"}}',
    "seal": '{{"filing_no": "GA{n:09d}", "seals": ["company", "finance", "invoice"]}}',
    "tax": '{"taxpayer_type": "small_scale", "ukey_issued": true}',
    "invoice": '{"invoice_kind": "digital_ordinary", "quantity": 25}',
    "bank": '{{"bank_name": "中国工商银行广州白云支行", "account_no": "3602{n:014d}"}}',
}
NULL = "\\N"


class Timeline:
    """The hall's working time as one axis: working minutes since the first day's opening ↔ instants."""

    def __init__(self, days: list[date]):
        self.days = days
        self.texts = [d.isoformat() for d in days]

    @property
    def minutes(self) -> int:
        return len(self.days) * DAY_MINUTES

    def text(self, minute: float) -> str:
        """The instant ``minute`` working minutes in, as COPY text with the hall's offset (whole seconds)."""
        index, of_day = divmod(minute, DAY_MINUTES)
        if index >= len(self.days):  # the very end of the axis: the last day's closing time
            index, of_day = len(self.days) - 1, DAY_MINUTES
        seconds = int(of_day * 60)
        clock = 9 * 3600 + seconds if of_day < MORNING_MINUTES else 13 * 3600 + 1800 + seconds - MORNING_MINUTES * 60
        hours, rest = divmod(clock, 3600)
        return f"{self.texts[int(index)]} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}+08"

    def day_index(self, minute: float) -> int:
        return int(minute // DAY_MINUTES)


def working_days(end: date, days: int = 365) -> list[date]:
    calendar = BusinessCalendar()
    first = end - timedelta(days=days - 1)
    return [d for d in (first + timedelta(days=i) for i in range(days)) if calendar.day(d).value]


def sla_status(minutes: float, target: int) -> str:
    return "breached" if minutes > target else "warning" if minutes >= 0.75 * target else "on_track"


def cases_and_steps(n: int, timeline: Timeline, now_minute: float, clerks: dict[str, list[int]], seed: int):
    """Yield (case line, [step lines]) in COPY text format, oldest acceptance first."""
    rng = random.Random(seed)
    lognormal, uniform, chance = rng.lognormvariate, rng.uniform, rng.random
    mus = {key: (math.log(median), sigma) for key, (_, _, median, sigma) in STEPS.items()}
    targets = {"registration": 90, "seal": 60, "tax": 60, "invoice": 60, "bank": 60}
    accepted = sorted(uniform(0, now_minute) for _ in range(n))
    per_day: dict[int, int] = {}
    step_id = 0
    for case_id, acc in enumerate(accepted, start=1):
        day = timeline.day_index(acc)
        per_day[day] = per_day.get(day, 0) + 1
        case_no = f"KB{timeline.texts[day].replace('-', '')}-{per_day[day]:04d}"
        wanted = {key for key, (_, share, _, _) in STEPS.items() if share >= 1.0 or chance() < share}
        if "tax" not in wanted:
            wanted.discard("invoice")
        refused = chance() < REFUSED_SHARE
        gap = uniform(60, 1800) if chance() < SUSPENDED_SHARE else 0.0
        elapsed = {key: lognormal(*mus[key]) for key in STEPS if key in wanted}  # a set's order varies
        ready_at = {"registration": acc}
        done = {"registration": acc + elapsed["registration"]}
        if not refused:
            for key in ("seal", "tax", "bank"):
                if key in wanted:
                    ready_at[key] = done["registration"]
                    done[key] = done["registration"] + gap + elapsed[key]
            if "invoice" in wanted:
                ready_at["invoice"] = done["tax"]
                done["invoice"] = done["tax"] + elapsed["invoice"]
        case_ready = max(done.values()) if not refused else None
        steps = []
        for key in STEPS:
            step_id += 1
            department = STEPS[key][0]
            assignee = ready = done_text = minutes = outputs = refusal = NULL
            status = "on_track"
            if key not in wanted:
                state = "skipped"
            elif key not in ready_at or ready_at[key] > now_minute:
                state = "waiting"
            else:
                ready = timeline.text(ready_at[key])
                assignee = str(rng.choice(clerks[department]))
                if refused and key == "registration":
                    state, refusal = ("refused", "经营范围涉及前置许可，材料不全") if done[key] <= now_minute \
                        else ("in_progress", NULL)
                elif done[key] <= now_minute:
                    state, done_text = "done", timeline.text(done[key])
                    minutes = f"{elapsed[key]:.6f}"
                    status = sla_status(elapsed[key], targets[key])
                    outputs = OUTPUTS[key].format(n=case_id) if "{n" in OUTPUTS[key] else OUTPUTS[key]
                else:
                    state = "in_progress"
            steps.append("\t".join((str(step_id), str(case_id), key, str(POSITION[key]), department, NEEDS[key],
                                    state, assignee, ready, ready, done_text, outputs, refusal, status, minutes)))
        created = timeline.text(max(acc - 5, 0.0))
        accepted_text = timeline.text(acc)
        ready_text = delivered = closed = closing = case_minutes = delivery = NULL
        case_status = "on_track"
        if refused:
            if done["registration"] <= now_minute:
                state = "rejected"
                closed = timeline.text(done["registration"])
                closing = "registration: 经营范围涉及前置许可，材料不全"
            else:
                state = "in_progress"
        elif case_ready <= now_minute:
            used = case_ready - acc - gap
            ready_text, case_minutes, case_status = timeline.text(case_ready), f"{used:.6f}", sla_status(used, 210)
            handed = case_ready + uniform(5, 600)
            if handed <= now_minute:
                state, delivered, delivery = "delivered", timeline.text(handed), '{"method": "counter"}'
            else:
                state = "ready"
        else:
            state = "suspended" if gap and done["registration"] <= now_minute < done["registration"] + gap \
                else "in_progress"
        updated = delivered if delivered != NULL else ready_text if ready_text != NULL else accepted_text
        name = f"广州市示例{case_id}科技有限公司"
        wants = json.dumps({key: key in wanted for key in ("seal", "invoice", "bank")})
        line = "\t".join((
            str(case_id), case_no, f"T{case_id:09d}", state, "1", "company_opening", "1", "window", name, "llc",
            APPLICATION.format(name=name, n=case_id % 999 + 1, wants=wants), "[]", delivery, closing, created, updated,
            accepted_text, ready_text, delivered, closed, "0", "0" * 64, case_status, case_minutes))
        yield line, steps


def copy_rows(conn: psycopg.Connection, n: int, timeline: Timeline, now_minute: float,
              clerks: dict[str, list[int]], seed: int) -> tuple[int, int]:
    """Stream cases and steps through two COPYs (steps after cases, for the foreign key)."""
    # Steps are spooled to a temporary file while the cases stream: one pass over the generator.
    cases = steps = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY cases ({', '.join(CASE_COLUMNS)}) FROM STDIN") as copy:
                buffer = []
                for line, step_lines in cases_and_steps(n, timeline, now_minute, clerks, seed):
                    buffer.append(line)
                    spool.write("\n".join(step_lines))
                    spool.write("\n")
                    steps += len(step_lines)
                    if len(buffer) >= CHUNK:
                        copy.write("\n".join(buffer) + "\n")
                        cases += len(buffer)
                        buffer.clear()
                if buffer:
                    copy.write("\n".join(buffer) + "\n")
                    cases += len(buffer)
            spool.seek(0)
            with cursor.copy(f"COPY steps ({', '.join(STEP_COLUMNS)}) FROM STDIN") as copy:
                while block := spool.read(1 << 22):
                    copy.write(block)
    return cases, steps


def database_url(given: str | None) -> str:
    url = given or os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        sys.exit("generate: give a PostgreSQL URL (--database-url, DATABASE_URL or TEST_DATABASE_URL)")
    return url


def migrate(url: str) -> None:
    from alembic import command

    from api import create_app
    from api.cli import alembic_config

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context():
        command.upgrade(alembic_config(), "head")
    app.extensions["onewindow.db"].kw["bind"].dispose()


def check_head(engine) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with engine.connect() as conn:
        current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if current != heads:
        sys.exit(f"generate: the database is at {sorted(current)}, not head {sorted(heads)}: migrate it first")


DEFAULT_NOW = "2026-11-23T17:30:00+08:00"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--now", default=DEFAULT_NOW,
                        help="the end of the year of history (ISO 8601 with offset)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url")
    parser.add_argument("--migrate", action="store_true", help="run the migrations to head first")
    args = parser.parse_args(argv)
    url = database_url(args.database_url)
    if args.migrate:
        migrate(url)
    engine = make_engine(url)
    check_head(engine)
    with engine.connect() as conn:
        if conn.execute(text("SELECT EXISTS (SELECT 1 FROM cases)")).scalar():
            sys.exit("generate: the database already holds cases; use an empty one")

    now = datetime.fromisoformat(args.now).astimezone(HALL_TZ)
    days = working_days(now.date())
    if not days:
        sys.exit("generate: no working day in the year before --now")
    timeline = Timeline(days)
    # Working minutes up to now on the axis (now's own day counts up to its time of day).
    now_minute = timeline.minutes
    if days[-1] == now.date():
        clock = now.hour * 60 + now.minute
        worked = min(max(clock - 9 * 60, 0), MORNING_MINUTES) + min(max(clock - (13 * 60 + 30), 0), 240)
        now_minute -= DAY_MINUTES - worked

    began = time.perf_counter()
    with make_sessionmaker(engine)() as session:
        store.current(session)  # publishes company_opening v1
        clerks: dict[str, list[int]] = {}
        for department in sorted({d for d, *_ in STEPS.values()}):
            for k in range(CLERKS + 1):
                role = "supervisor" if k == CLERKS else "clerk"
                username = f"{department}_{role}_{k}"
                user_id = session.execute(text(
                    "INSERT INTO users (username, display_name, role, department, password_hash, active, "
                    "failed_logins, created_at) VALUES (:u, :u, :r, :d, '-', true, 0, now()) RETURNING id"),
                    {"u": username, "r": role, "d": department}).scalar_one()
                if role == "clerk":
                    clerks.setdefault(department, []).append(user_id)
        session.commit()

    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(raw) as conn:
        conn.execute("SET synchronous_commit = off")
        cases, steps = copy_rows(conn, args.cases, timeline, now_minute, clerks, args.seed)
        for table in ("cases", "steps"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
    copied = time.perf_counter() - began
    with psycopg.connect(raw, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) cases")
        conn.execute("VACUUM (ANALYZE) steps")
    total = time.perf_counter() - began
    print(f"generate: {cases:,} cases and {steps:,} steps over {len(days)} working days "
          f"({days[0]} to {days[-1]}), now {now.isoformat()}")
    print(f"generate: written in {copied:.1f} s, with VACUUM ANALYZE {total:.1f} s")
    engine.dispose()


if __name__ == "__main__":
    main()
