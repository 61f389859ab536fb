"""Tracking under burst: requests per second and p99 of ``GET /api/v1/track`` against its ceiling.

What is measured: wrk (``--latency``: its percentiles are from every request) hammering
``/api/v1/track?case_no=…&code=…`` of the real app for ``--duration`` seconds with ``--connections``
keep-alive connections on 2 threads, each request for another case (``bench/track.lua`` walks a
list of ``--cases`` seeded cases: submitted, at every step, ready and delivered, all with their
right codes, so every answer is a 200 that carries the estimate). The database is PostgreSQL,
first filled by ``bench/generate.py`` with ``--history`` cases of a year's history (the estimate's
medians read the latest completions of each step among them), then the tracked cases are made
through the engine's operations.

The app's rate limits are on, as in production, but set above the burst
(``FLASK_TRACK_LIMIT`` and ``FLASK_TRACK_MISS_LIMIT`` = ``1000000 per minute``): every lookup still
goes through Flask-Limiter's moving windows in memory, so their cost is counted; wrk is one client
address, which the default limits would stop after 120 lookups.

The ceiling, in the same run, alternating with the app: ``bench/bare_track.py``, a bare Flask app
with one route doing one indexed SELECT by case number with plain psycopg (a connection per worker
thread), under the same gunicorn settings (gthread, 2 workers × 4 threads), the same wrk settings
and the same database and cases. Five runs (``BENCH_RUNS``) after a warm-up of each. wrk's own CPU
(from ``getrusage`` of the child) is recorded beside each: it shares the 2 cores with the server.

Run: ``bin/with-postgres .venv/bin/python bench/track_burst.py`` (about three minutes, most of it
seeding). Targets: at least 50 % of the ceiling's requests per second, and p99 under 20 ms.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, RUNS, Figures, Result, postgres_url, record  # noqa: E402
from http_server import Client, Server, analyze, app_env, seed_cases  # noqa: E402

BENCH = Path(__file__).resolve().parent
ABOVE_THE_BURST = "1000000 per minute"
TARGET_SHARE, TARGET_P99_MS = 0.5, 20.0
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(port: int, path: str, cases_file: str, connections: int,
        duration: float) -> tuple[float, float, float, int, float]:
    """One wrk run: requests per second, p50 and p99 in ms, socket errors (timeouts: 30 s), and the
    CPU seconds wrk itself used (its share of the 2 cores is the load client's cost).

    Fails on any answer but 2xx or 3xx: the setup is wrong then, not the server slow.
    """
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "30s",
               "--latency", "-s", str(BENCH / "track.lua"), f"http://127.0.0.1:{port}/"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, capture_output=True, text=True, check=True,
                            env={**os.environ, "TRACK_CASES": cases_file, "TRACK_PATH": path}).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors on {path}:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))

    def latency(share: str) -> float:
        value, unit = re.search(rf"^\s+{share}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M).groups()
        return float(value) * UNITS[unit]

    return rate, latency("50"), latency("99"), sum(map(int, errors.groups())) if errors else 0, cpu


def history(url: str, cases: int) -> None:
    """A year of finished cases before today, written by ``bench/generate.py`` (COPY, no events)."""
    if not cases:
        return
    from workflow.calendar import HALL_TZ

    yesterday = (datetime.now(HALL_TZ) - timedelta(days=1)).replace(hour=17, minute=30, second=0, microsecond=0)
    subprocess.run([sys.executable, str(BENCH / "generate.py"), "--database-url", url, "--cases", str(cases),
                    "--now", yesterday.isoformat(timespec="seconds")], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=800, help="cases tracked (made through the operations)")
    parser.add_argument("--history", type=int, default=100_000, help="finished cases of a year's history")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=RUNS)
    options = parser.parse_args()

    url = postgres_url()
    if url is None:
        sys.exit("track_burst needs PostgreSQL: run under bin/with-postgres")
    history(url, options.history)
    tracked = seed_cases(url, options.cases)
    analyze(url)
    cases_file = tempfile.NamedTemporaryFile("w", prefix="bench-track-", suffix=".txt", delete=False)
    cases_file.write("".join(f"{case.case_no} {case.code}\n" for case in tracked))
    cases_file.close()

    env = app_env(url, TRACK_LIMIT=ABOVE_THE_BURST, TRACK_MISS_LIMIT=ABOVE_THE_BURST)
    app = Server("wsgi:app", env)
    bare = Server("bare_track:app", env, ready_path="/track", extra_args=("--pythonpath", str(BENCH)))
    rates, p50s, p99s, ceiling_rates, ceiling_p50s, ceiling_p99s = [], [], [], [], [], []
    socket_errors: list[int] = []
    client_share, ceiling_client_share = [], []  # wrk's CPU seconds per second of run (cores)
    with app, bare:
        sample = tracked[len(tracked) // 2]
        for server, path in ((app, "/api/v1/track"), (bare, "/track")):
            status, body, _ = Client(server.port).call("GET", f"{path}?case_no={sample.case_no}&code={sample.code}")
            assert status == 200 and body["case_no"] == sample.case_no, (status, body)
        wrk(app.port, "/api/v1/track", cases_file.name, options.connections, 3)  # warm-up
        wrk(bare.port, "/track", cases_file.name, options.connections, 3)
        for run in range(options.runs):
            rate, p50, p99, errors, cpu = wrk(app.port, "/api/v1/track", cases_file.name, options.connections,
                                              options.duration)
            rates.append(rate), p50s.append(p50), p99s.append(p99), socket_errors.append(errors)
            client_share.append(cpu / options.duration)
            rate, p50, p99, errors, cpu = wrk(bare.port, "/track", cases_file.name, options.connections,
                                              options.duration)
            ceiling_rates.append(rate), ceiling_p50s.append(p50), ceiling_p99s.append(p99)
            socket_errors[-1] += errors
            ceiling_client_share.append(cpu / options.duration)
            print(f"run {run + 1}: app {rates[-1]:.0f}/s p50 {p50s[-1]:.1f} ms p99 {p99s[-1]:.1f} ms "
                  f"(wrk {client_share[-1]:.0%} of a core); bare {rate:.0f}/s p50 {p50:.1f} ms p99 {p99:.1f} ms "
                  f"(wrk {ceiling_client_share[-1]:.0%})"
                  + (f"; {socket_errors[-1]} socket errors" if socket_errors[-1] else ""), flush=True)
    Path(cases_file.name).unlink()

    rate, ceiling_rate = Figures(rates, "requests/s"), Figures(ceiling_rates, "requests/s")
    p99, ceiling_p99 = Figures(p99s, "ms"), Figures(ceiling_p99s, "ms")
    ratios = Figures([a / b for a, b in zip(rates, ceiling_rates)], "share")
    wrk_cost = (f"wrk used {Figures(client_share, 'cores')} against the app, "
                f"{Figures(ceiling_client_share, 'cores')} against the ceiling")
    setup = (f"wrk -t2 -c{options.connections} -d{options.duration:g}s over {len(tracked)} cases (every stage, right "
             f"codes) among {options.history:,} cases of history; {app.settings}; ceiling bench/bare_track.py (one "
             f"indexed SELECT, plain psycopg, a connection per worker thread) under the same settings, alternating "
             f"with the app in each run")
    limits_note = (f"rate limits on but above the burst (FLASK_TRACK_LIMIT = FLASK_TRACK_MISS_LIMIT = "
                   f"'{ABOVE_THE_BURST}', memory://, moving window): their cost is counted")
    common = {"database": "postgresql", "extra": {"ratio_per_run": ratios.as_dict(), "server": app.settings,
                                                  "p50": Figures(p50s, "ms").as_dict(),
                                                  "ceiling_p50": Figures(ceiling_p50s, "ms").as_dict(),
                                                  "connections": options.connections, "cases": len(tracked),
                                                  "socket_errors": socket_errors,
                                                  "wrk_cores": Figures(client_share, "cores").as_dict(),
                                                  "ceiling_wrk_cores": Figures(ceiling_client_share, "cores").as_dict(),
                                                  "history": options.history}}
    record("track_burst", Result(
        benchmark="tracking under burst", figure="requests per second", measured=rate.as_dict(),
        ceiling=ceiling_rate.as_dict(), target=f"≥ {TARGET_SHARE:.0%} of the ceiling",
        met=rate.median >= TARGET_SHARE * ceiling_rate.median, notes=f"{setup}; {limits_note}; {wrk_cost}", **common))
    record("track_burst", Result(
        benchmark="tracking under burst", figure="p99 latency", measured=p99.as_dict(),
        ceiling=ceiling_p99.as_dict(), target=f"p99 < {TARGET_P99_MS:.0f} ms", met=p99.median < TARGET_P99_MS,
        notes=f"wrk's --latency p99 over every request of each run, {options.connections} connections",
        **{**common, "extra": {**common["extra"], "ratio_as": "times"}}))
    print(f"app {rate}, ceiling {ceiling_rate}: {rate.median / ceiling_rate.median:.0%} of the ceiling "
          f"(per run {ratios}); p99 {p99} (ceiling {ceiling_p99})")


if __name__ == "__main__":
    main()
