"""Crashes (issue 9, item 2): the app and its timer workers, SIGKILLed twenty times under load, lose nothing.

Runs ``tests/reliability/crash_drill.py`` (see its docstring for what runs, what is killed and what
is checked) on the database of this run: a SQLite file in WAL mode shared by every process, or a
new PostgreSQL database beside ``TEST_DATABASE_URL`` when it is set. The processes' logs are kept in
the test's ``tmp_path``; the figures are printed (``-rP`` shows them).
"""
import os

import pytest

from . import crash_drill

pytestmark = pytest.mark.slow

KILLS = 20


def test_twenty_sigkills_under_load_leave_every_case_legal_every_chain_whole_and_nothing_lost(tmp_path):
    database = "postgres" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
    report = crash_drill.run(database, kills=KILLS, directory=tmp_path)
    print(report.summary())
    print(report.kill_lines())

    assert report.problems == [], report.summary()
    # The drill did what it says: twenty kills, every kind at least once, each one brought back.
    assert len(report.kills) == KILLS and {kill.kind for kill in report.kills} == set(crash_drill.KINDS)
    assert sum(report.restarts.values()) >= KILLS
    # The kills struck requests in flight, and every request whose answer was lost was sent again
    # until answered, once: by replaying its committed first answer, or by doing it then.
    stats = report.stats
    assert stats.lost > 0 and stats.replayed_after_loss + stats.executed_after_loss > 0
    assert stats.unexpected == 0
    # Every 2xx the clients saw is an action in a chain, and the clients saw cases of every kind.
    assert stats.answered_2xx == report.figures["answered actions found"] > 0
    assert report.figures["cases"] >= 20
    # Timers fell due and fired while the processes were being killed, not only in the final sweep.
    assert report.figures["timers fired"] - report.fired_by_final_sweep > 0
