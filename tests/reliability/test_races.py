"""Sixteen clerks racing on the same steps of 500 cases, then every case, step, version and chain checked.

``tests/workflow/test_concurrency.py`` races two to eight clerks on one step of one case; this runs a
whole hall: 500 cases (a different mix of optional steps each) worked to ``ready`` by sixteen threads
— three staff of each agency (two clerks and a supervisor) and four window clerks — each with its own
session per request, as the web layer works. A clerk looks at the queue (an unlocked read, like a
page), picks an item and acts on what it saw, which other clerks may have changed meanwhile:
accept, claim, complete, release, suspend, resume; sometimes with ``If-Match`` (the version it
saw), sometimes from a stale page without the row lock (the version column must catch it),
sometimes on a step it has no business touching. Only a few cases are worked at a time, so several
clerks always race on the same case and step. Beside them the timer worker sweeps, its clock a
month ahead, so SLA thresholds are recorded on the same chains at the same moments.

Every attempt must succeed or raise one of the engine's own errors (``WorkflowError``): a "database
is locked" or any other exception reaching a user fails the test. Afterwards the database must tell
exactly the story the threads saw: one event per successful action and none for a refused one,
versions equal to the number of successful writes, each step claimed, released and completed as
its events say (and completed once), each case's events a legal walk through the state machines,
every join made once, right after the completion that settled its last step, every fired timer
recorded once, and every audit chain valid — by ``audit.verify`` and by ``flask audit verify``.

Runs on SQLite (WAL, busy timeout, ``BEGIN IMMEDIATE``) and, in the second run of ``make test``,
on PostgreSQL (``FOR UPDATE``). The figures are printed: ``pytest -rP tests/reliability/test_races.py``.
"""
from __future__ import annotations

import collections
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from workflow import accounts, audit, operations as ops, timers
from workflow.actors import Actor, Role
from workflow.clock import utcnow
from workflow.db import make_engine, make_sessionmaker
from workflow.errors import WorkflowError
from workflow.machines import case as case_machine, step as step_machine
from workflow.models import Case, Event, Step, Suspension, Timer, User
from workflow.operations.cases import definition_of

from ..factories import PASSWORD, application, outputs_for

pytestmark = pytest.mark.slow

CASES = 500
THREADS = 16
HOT = 8           # cases worked at once: sixteen clerks on eight cases keep every open step contended
SWEEP_AHEAD = timedelta(days=30)  # the timer worker's clock runs ahead, so its thresholds fire during the race
TIME_LIMIT = 240  # seconds; a run takes about a minute on 2 cores, a stuck case shows as a failure
OPTIONAL = ("seal", "invoice", "bank")
AGENCIES = ("market_regulation", "public_security", "taxation", "bank")


@dataclass(frozen=True)
class Member:
    """One thread's person."""

    actor: Actor

    @property
    def window(self) -> bool:
        return self.actor.is_window

    @property
    def supervisor(self) -> bool:
        return self.actor.role is Role.supervisor


@dataclass
class Board:
    """The cases being worked: a few hot ones at a time, the next one coming in when one is ready."""

    waiting: collections.deque
    hot: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    deadline: float = 0.0

    def __post_init__(self):
        while len(self.hot) < HOT and self.waiting:
            self.hot.append(self.waiting.popleft())

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.hot)

    def retire(self, case_no: str) -> None:
        with self.lock:
            if case_no in self.hot:
                self.hot.remove(case_no)
                if self.waiting:
                    self.hot.append(self.waiting.popleft())

    def over(self) -> bool:
        return not self.hot or time.monotonic() > self.deadline


@dataclass
class Tally:
    """What the threads saw: every attempt's outcome, every success, every unexpected exception."""

    outcomes: collections.Counter = field(default_factory=collections.Counter)  # (action, outcome)
    successes: list = field(default_factory=list)  # (case_no, action, step, username)
    unexpected: list = field(default_factory=list)  # tracebacks
    seconds: list = field(default_factory=list)  # how long each action took, lock waits included
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, action: str, outcome: str, success=None, error: str | None = None, count: int = 1) -> None:
        with self.lock:
            self.outcomes[action, outcome] += count
            if success:
                self.successes.append(success)
            if error:
                self.unexpected.append(error)


def cast(session) -> list[Member]:
    """Sixteen people: two clerks and a supervisor of each agency, four window clerks."""
    people = [(role, dept, n) for dept in AGENCIES for role, n in (("clerk", 1), ("clerk", 2), ("supervisor", 1))]
    people += [("clerk", "service_window", n) for n in range(1, 5)]
    members = [Member(accounts.create_user(session, f"race-{dept}-{role}-{n}", PASSWORD, role, dept).as_actor())
               for role, dept, n in people]
    session.commit()
    assert len(members) == THREADS
    return members


def open_cases(session, window: Actor) -> list[str]:
    """500 submitted cases, each wanting a different mix of the optional steps (all eight occur)."""
    numbers = []
    for i in range(CASES):
        wants = {key: bool(i >> bit & 1) for bit, key in enumerate(OPTIONAL)}
        case = ops.submit_case(session, window, application(wants=wants))
        numbers.append(case.case_no)
        if i % 50 == 49:
            session.commit()
    session.commit()
    return numbers


# --- The clerks ---------------------------------------------------------------------------------------

def look_at_queue(maker, board: Board, member: Member):
    """What the person's page shows now: the hot cases' steps of their department, or the cases."""
    hot = board.snapshot()
    with maker() as session:
        if member.window:
            return session.execute(select(Case.case_no, Case.state, Case.version)
                                   .where(Case.case_no.in_(hot))).all()
        return session.execute(
            select(Case.case_no, Case.state.label("case_state"), Case.version, Step.key, Step.state,
                   Step.assignee_id)
            .join(Step, Step.case_id == Case.id)
            .where(Case.case_no.in_(hot), Step.department == member.actor.department)).all()


def choose(member: Member, rows, rng: random.Random):
    """The action the person takes on what they saw: (action, case_no, step, version seen), or None."""
    if not rows:
        return None
    me = member.actor
    if member.window:
        row = rng.choice(rows)
        if row.state.value == "submitted":  # the window clerks race to accept each new case
            return "accept", row.case_no, None, row.version
        if row.state.value == "suspended":
            return "resume", row.case_no, None, row.version
        if row.state.value == "in_progress" and rng.random() < 0.02:
            return "suspend", row.case_no, None, row.version
        if rng.random() < 0.01:  # a page from before: resume a running case, suspend a finished one
            return rng.choice(("suspend", "resume")), row.case_no, None, row.version
        return None
    if member.supervisor and rng.random() < 0.02:  # the supervisor stops or restarts a clock
        row = rng.choice(rows)
        return ("resume" if row.case_state.value == "suspended" else "suspend"), row.case_no, None, row.version
    open_rows = [r for r in rows if r.state.value in ("ready", "in_progress")]
    if not open_rows:
        return None
    if rng.random() < 0.03:  # a stale or mistaken click on any step of the department
        row = rng.choice(rows)
        return rng.choice(("claim", "complete", "release")), row.case_no, row.key, row.version
    row = rng.choice(open_rows)
    if row.state.value == "ready":
        return "claim", row.case_no, row.key, row.version
    if row.assignee_id == me.user_id:
        return rng.choices(("complete", "release"), (6, 1))[0], row.case_no, row.key, row.version
    if member.supervisor:  # finishing or taking back a clerk's step, racing the holder
        action = rng.choices(("complete", "release", None), (3, 1, 4))[0]
        return action and (action, row.case_no, row.key, row.version)
    if rng.random() < 0.1:  # someone else's step: 403 while held, 409 once it moved on
        return rng.choice(("claim", "complete", "release")), row.case_no, row.key, row.version
    return None


def page_of(member: Member, case: Case) -> list[SimpleNamespace]:
    """What the response to a successful action shows the person: the case, as ``look_at_queue`` rows."""
    if member.window:
        return [SimpleNamespace(case_no=case.case_no, state=case.state, version=case.version)]
    return [SimpleNamespace(case_no=case.case_no, case_state=case.state, version=case.version, key=s.key,
                            state=s.state, assignee_id=s.assignee_id)
            for s in case.steps if s.department == member.actor.department]


def act(maker, member: Member, plan, rng: random.Random, tally: Tally, board: Board) -> list | None:
    """One request: load the case (locked, or from a stale page without the lock), act, commit or roll back.

    Return the page the response shows (the case as it now is), or None when the action was refused.
    """
    action, case_no, key, seen_version = plan
    locked = rng.random() < 0.8
    expected = seen_version if rng.random() < 0.3 else None
    me = member.actor
    began = time.monotonic()
    with maker() as session:
        try:
            case = ops.get_case(session, case_no, lock=locked)
            if action == "accept":
                ops.accept_case(session, case, me, expected_version=expected)
            elif action == "claim":
                ops.claim_step(session, case, key, me, expected_version=expected)
            elif action == "release":
                ops.release_step(session, case, key, me, expected_version=expected)
            elif action == "complete":
                ops.complete_step(session, case, key, me, outputs_for(key, rng), expected_version=expected)
            elif action == "suspend":
                ops.suspend_case(session, case, me, reason="补正材料", expected_version=expected)
            elif action == "resume":
                ops.resume_case(session, case, me, expected_version=expected)
            else:
                raise ValueError(f"no such action {action}")
            session.commit()
            tally.seconds.append(time.monotonic() - began)  # list.append is atomic
        except WorkflowError as refused:
            session.rollback()
            state = getattr(refused, "state", None)  # what the loser found: a done step, a suspended case...
            tally.add(action, type(refused).__name__ + (f"({state})" if state else ""))
            return None
        except Exception as error:  # noqa: BLE001 — the point: nothing else may reach a user
            session.rollback()
            tally.add(action, f"unexpected {type(error).__name__}",
                      error=f"{action} {key or ''} on {case_no} by {me.username}:\n{traceback.format_exc()}")
            return None
        tally.add(action, "ok", success=(case_no, action, key, me.username))
        if case.state.value == "ready":
            board.retire(case_no)
        return page_of(member, case)


def clerk(maker, member: Member, seed: int, board: Board, tally: Tally, start: threading.Barrier) -> None:
    rng = random.Random(seed)
    start.wait()
    page = None
    try:
        while not board.over():
            # Acting on the page the last response showed (claim, then complete), else on the queue.
            rows = page or look_at_queue(maker, board, member)
            if page is None:
                tally.add("look", "ok")
            for row in rows:  # a case already ready (the last completion was another's) leaves the board
                if (row.state if member.window else row.case_state).value == "ready":
                    board.retire(row.case_no)
            plan = choose(member, rows, rng)
            if plan is None:
                if page is None:
                    time.sleep(rng.uniform(0.01, 0.05))  # nothing to do: let the others work, look again
                page = None
                continue
            page = act(maker, member, plan, rng, tally, board)
    except Exception:  # noqa: BLE001 — a look that fails is as bad as an action that does
        tally.add("look", "unexpected", error=traceback.format_exc())


def timer_worker(maker, board: Board, tally: Tally, start: threading.Barrier) -> None:
    """``flask timers run`` beside the clerks, its clock a month ahead: every armed threshold is due.

    Each batch locks its cases (SKIP LOCKED on PostgreSQL, the write lock on SQLite) and appends
    ``sla_warning``/``sla_breach`` events to chains the clerks are extending at the same moment.
    """
    start.wait()
    try:
        while not board.over():
            with maker() as session:
                fired = timers.fire_due(session, utcnow() + SWEEP_AHEAD)
                session.commit()
            tally.add("sweep", "ok")
            tally.add("fired", "ok", count=fired)
            if not fired:
                time.sleep(0.05)
    except Exception:  # noqa: BLE001 — the worker must not fail beside the clerks either
        tally.add("sweep", "unexpected", error=traceback.format_exc())


# --- The checks ---------------------------------------------------------------------------------------

def _moves(machine_module) -> dict[str, set[tuple[str, str]]]:
    """Each trigger's legal (from, to) pairs, read from the machine's transitions."""
    moves = collections.defaultdict(set)
    for t in machine_module.TRANSITIONS:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for source in sources:
            moves[t["trigger"]].add((source.value, t["dest"].value))
    return moves


CASE_MOVES = _moves(case_machine)
STEP_MOVES = _moves(step_machine)


def replay(case: Case, events: list[Event], needs: dict[str, list[str]]) -> list[str]:
    """Walk the case's events through the machines and the definition; return what is wrong."""
    wrong = []
    steps: dict[str, str] = {}
    state = None
    holder: dict[str, int | None] = {}
    last_settling = None
    finishes = []
    for evt in events:
        where = f"{case.case_no} #{evt.seq} {evt.action} {evt.step or ''}"
        if evt.action.startswith("sla_"):  # a threshold crossed: recorded by the timer worker, no state moves
            if evt.actor != "system" or evt.from_state or evt.to_state:
                wrong.append(f"{where}: by {evt.actor}, {evt.from_state}→{evt.to_state}")
            continue
        if evt.action == "submit":
            wanted = set(evt.payload["steps"])
            steps = {key: ("waiting" if key in wanted else "skipped") for key in needs}
            state = evt.to_state
            continue
        if evt.step is None:
            if (evt.from_state, evt.to_state) not in CASE_MOVES[evt.action] or evt.from_state != state:
                wrong.append(f"{where}: {evt.from_state}→{evt.to_state} from {state}")
            if evt.action == "finish":
                finishes.append(evt.seq)
                if any(s not in ("done", "skipped") for s in steps.values()):
                    wrong.append(f"{where}: joined with steps {steps}")
                if last_settling != evt.seq - 1:
                    wrong.append(f"{where}: not right after the completion that settled the last step")
            state = evt.to_state
            continue
        current = steps.get(evt.step)
        if (evt.from_state, evt.to_state) not in STEP_MOVES[evt.action] or evt.from_state != current:
            wrong.append(f"{where}: {evt.from_state}→{evt.to_state} from {current}")
        if evt.action == "unblock":
            if any(steps[n] not in ("done", "skipped") for n in needs[evt.step]):
                wrong.append(f"{where}: opened before {needs[evt.step]} settled ({steps})")
        elif state != "in_progress":
            wrong.append(f"{where}: a step moved while the case was {state}")
        if evt.action == "claim":
            holder[evt.step] = evt.actor_id
        elif evt.action == "release":
            holder[evt.step] = None
        steps[evt.step] = evt.to_state
        if evt.action == "complete" and all(s in ("done", "skipped") for s in steps.values()):
            last_settling = evt.seq
    if state != case.state.value:
        wrong.append(f"{case.case_no}: events end in {state}, the case is {case.state.value}")
    for step in case.steps:
        if steps.get(step.key) != step.state.value:
            wrong.append(f"{case.case_no} {step.key}: events end in {steps.get(step.key)}, the step is "
                         f"{step.state.value}")
        if step.state.value in ("in_progress", "done") and step.assignee_id != holder.get(step.key):
            wrong.append(f"{case.case_no} {step.key}: held by {step.assignee_id}, last claimed by "
                         f"{holder.get(step.key)}")
        if (step.state.value == "done") != (step.outputs is not None):
            wrong.append(f"{case.case_no} {step.key}: {step.state.value} with outputs {step.outputs}")
    if len(finishes) != (1 if case.state.value in ("ready", "delivered") else 0):
        wrong.append(f"{case.case_no}: {len(finishes)} joins, case {case.state.value}")
    return wrong


def check(session, app, numbers: list[str], tally: Tally) -> dict:
    """Read everything back; assert it tells the threads' story; return the figures."""
    cases = session.scalars(select(Case).where(Case.case_no.in_(numbers)).order_by(Case.id)).all()
    events = collections.defaultdict(list)
    for evt in session.scalars(select(Event).order_by(Event.case_id, Event.seq)):
        events[evt.case_id].append(evt)
    usernames = dict(session.execute(select(User.id, User.username)).all())
    suspensions = collections.Counter(session.scalars(select(Suspension.case_id)).all())
    open_suspensions = session.scalar(select(func.count()).select_from(Suspension).where(Suspension.ended_at.is_(None)))

    # Nothing lost, nothing invented: the people's events are exactly the successes the threads saw.
    recorded = collections.Counter(
        (case.case_no, e.action, e.step, usernames[e.actor_id])
        for case in cases for e in events[case.id] if e.actor != "system" and e.action != "submit")
    assert recorded == collections.Counter(tally.successes), "events differ from the successful actions"

    successes = collections.Counter(s[0] for s in tally.successes)
    wrong = []
    for case in cases:
        trail = events[case.id]
        by_people = [e for e in trail if e.actor != "system"]
        # Versions: submit, then one per successful write — a lost update would leave it short.
        if case.version != 1 + successes[case.case_no] or case.version != len(by_people):
            wrong.append(f"{case.case_no}: version {case.version}, {successes[case.case_no]} successes, "
                         f"{len(by_people)} events by people")
        per_step = collections.Counter((e.step, e.action) for e in trail if e.step)
        for step in case.steps:
            done = step.state.value == "done"
            claimed = step.state.value in ("in_progress", "done")
            if per_step[step.key, "complete"] != int(done) or \
                    per_step[step.key, "claim"] != per_step[step.key, "release"] + int(claimed) or \
                    per_step[step.key, "unblock"] != int(step.state.value != "skipped"):
                wrong.append(f"{case.case_no} {step.key} ({step.state.value}): events "
                             f"{ {a: n for (k, a), n in per_step.items() if k == step.key} }")
        suspends = sum(1 for e in trail if e.action == "suspend")
        if suspensions[case.id] != suspends or suspends != sum(1 for e in trail if e.action == "resume"):
            wrong.append(f"{case.case_no}: {suspensions[case.id]} suspensions, {suspends} suspend events")
        needs = {s.key: s.needs for s in definition_of(session, case).steps}
        wrong += replay(case, trail, needs)
    assert wrong == [], "\n".join(wrong[:30])
    assert open_suspensions == 0

    # Every threshold the worker fired is recorded once, and nothing else recorded one.
    thresholds = collections.Counter((e.case_id, e.step, e.action) for trail in events.values() for e in trail
                                     if e.action.startswith("sla_"))
    fired = collections.Counter(session.execute(select(Timer.case_id, Timer.subject, Timer.kind)
                                                .where(Timer.fired_at.is_not(None))).all())
    assert all(n == 1 for n in thresholds.values()), "a threshold recorded twice"
    assert thresholds == collections.Counter(
        (case_id, None if subject == timers.CASE else subject, f"sla_{kind}") for case_id, subject, kind in fired)
    assert sum(thresholds.values()) == tally.outcomes["fired", "ok"]

    assert audit.verify(session) == []
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "every chain verifies" in result.output, result.output

    return {
        "states": collections.Counter(c.state.value for c in cases),
        "events": sum(len(events[c.id]) for c in cases),
        "joins": sum(1 for c in cases for e in events[c.id] if e.action == "finish"),
        "thresholds": sum(thresholds.values()),
        "shapes": collections.Counter(tuple(s.key for s in c.steps if s.state.value != "skipped") for c in cases),
    }


# --- The race -----------------------------------------------------------------------------------------

def test_sixteen_clerks_work_500_cases_and_nothing_is_lost(database_url, app, session, monkeypatch):
    # Nobody signs in here: skip argon2, which costs a third of a second and 64 MiB per user.
    monkeypatch.setattr(accounts, "_hash", lambda password: "unusable")
    began = time.monotonic()
    members = cast(session)
    numbers = open_cases(session, next(m.actor for m in members if m.window))
    setup = time.monotonic() - began
    engine = make_engine(database_url, pool_size=THREADS + 2, max_overflow=0)
    try:
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        maker = make_sessionmaker(engine)
        board = Board(collections.deque(numbers), deadline=time.monotonic() + TIME_LIMIT)
        tally = Tally()
        start = threading.Barrier(THREADS + 1)
        threads = [threading.Thread(target=clerk, args=(maker, m, 1000 + i, board, tally, start), name=m.actor.username)
                   for i, m in enumerate(members)]
        threads.append(threading.Thread(target=timer_worker, args=(maker, board, tally, start), name="timers"))
        began, cpu = time.monotonic(), time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIME_LIMIT + 60)
        took, cpu = time.monotonic() - began, time.process_time() - cpu
    finally:
        engine.dispose()

    looks = tally.outcomes.pop(("look", "ok"), 0)
    sweeps, fired = tally.outcomes.pop(("sweep", "ok"), 0), tally.outcomes["fired", "ok"]
    attempts = sum(n for (a, _), n in tally.outcomes.items() if a != "fired")
    print(f"\n{engine.dialect.name}: {CASES} cases opened in {setup:.1f} s; {THREADS} clerks tried {attempts} actions "
          f"in {took:.1f} s ({attempts / took:.0f}/s, {cpu:.0f} s of this process's CPU), "
          f"{len(tally.successes)} succeeded; {looks} looks at the queues; {sweeps} sweeps fired {fired} thresholds")
    waits = sorted(tally.seconds)
    print(f"  a successful action took {waits[len(waits) // 2] * 1000:.0f} ms (median), "
          f"{waits[len(waits) * 99 // 100] * 1000:.0f} ms (99th percentile), {waits[-1] * 1000:.0f} ms at most")
    for action in ("accept", "claim", "complete", "release", "suspend", "resume"):
        outcomes = {o: n for (a, o), n in sorted(tally.outcomes.items()) if a == action}
        print(f"  {action:9} {sum(outcomes.values()):6}  {outcomes}")

    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert tally.unexpected == [], f"{len(tally.unexpected)} unexpected errors reached a user:\n" + \
        "\n".join(tally.unexpected[:3])
    session.expire_all()
    began = time.monotonic()
    figures = check(session, app, numbers, tally)
    print(f"  checked in {time.monotonic() - began:.1f} s: {figures['events']} events, {figures['joins']} joins, "
          f"{figures['thresholds']} thresholds, states {dict(figures['states'])}, {len(figures['shapes'])} step mixes; "
          "every chain verifies")
    assert figures["states"] == {"ready": CASES}, f"not every case reached ready in {TIME_LIMIT} s"
    # The race was a race: people lost to each other on the same steps, and every refusal was the engine's.
    lost = sum(n for (_, o), n in tally.outcomes.items() if o.startswith(("IllegalAction", "Conflict", "Precondition")))
    assert lost > CASES, f"only {lost} lost races: the clerks did not contend"
