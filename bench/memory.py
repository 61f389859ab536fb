"""Memory: the resident set of a gunicorn worker over 10 000 mixed requests, sampled every 1 000.

What is measured: the real app (``wsgi:app``) under gunicorn gthread, 2 workers × 4 threads, on a
fresh PostgreSQL database with ``--cases`` cases made through the engine's operations (every stage,
a third delivered). Four client threads, each with its own keep-alive connections, send
``--requests`` requests in a fixed mix: the applicant's tracking (API and page), the REST lists
(cases paged and filtered, notifications), a case and its audit trail through the API, the staff
pages (a clerk's queue, a supervisor's board, an admin's dashboard, case pages, signed in with the
session cookie) and, every 200th request, a receipt PDF (WeasyPrint: the heaviest thing the app
does). Every 1 000 requests the script reads ``VmRSS`` and ``VmHWM`` (the peak) of each worker from
``/proc``. A run is a fresh server; at least five runs.

Figures: the peak RSS of the larger worker after all requests (``VmHWM``: what lives only during
a request counts too, e.g. a sign-in's 64 MiB of argon2), the largest RSS at the samples, and the
growth: RSS after the last 1 000 requests less RSS after the first 2 000 (by then every kind of
request, the PDF included, has been served and the caches filled), the larger of the two workers'.
The ceiling (here a floor): the same worker's RSS after its first request of each kind in the
same run — what the imports, the fonts and the caches cost before any load.

The tracking limits are set above the run (``FLASK_TRACK_LIMIT`` etc. = ``1000000 per minute``):
every request comes from one address; the limiter still counts each lookup in memory.

Run: ``bin/with-postgres .venv/bin/python bench/memory.py`` (about half an hour on 2 cores).
Targets: peak (and largest sample) under 200 MB, growth from 2 000 to 10 000 requests under 5 MB.
"""
from __future__ import annotations

import argparse
import itertools
import random
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RUNS, Figures, Result, postgres_url, record  # noqa: E402
from http_server import PASSWORD, Client, Server, analyze, app_env, rss_kib, seed_cases, seed_staff  # noqa: E402

ABOVE_THE_RUN = "1000000 per minute"
TARGET_MB, TARGET_GROWTH_MB = 200.0, 5.0
SAMPLE_EVERY = 1000
RECEIPT_EVERY = 200
CLIENTS = 4
# One cycle of the mix (20 requests); a receipt replaces every RECEIPT_EVERY-th request.
MIX = ("track_api", "list", "case_page", "track_page", "case_api", "queue", "track_api", "list_filtered",
       "events", "track_api", "case_page", "board", "notifications", "track_page", "list", "case_api",
       "queue", "track_api", "dashboard", "case_page")


class Load:
    """The clients of one run, sending requests in the mix until ``total`` have been sent."""

    def __init__(self, port: int, staff: dict, cases: list, total: int, on_sample):
        self.port, self.staff, self.cases, self.total, self.on_sample = port, staff, cases, total, on_sample
        self.finished = [case for case in cases if case.state in ("ready", "delivered")]
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.failures: list[str] = []

    def _clients(self, rng: random.Random) -> dict[str, Client]:
        clerk = Client(self.port, self.staff["taxation"][0].token)
        clerk.sign_in(self.staff["taxation"][0].username, PASSWORD)
        supervisor = Client(self.port, self.staff["supervisor"][0].token)
        supervisor.sign_in(self.staff["supervisor"][0].username, PASSWORD)
        admin = Client(self.port)
        admin.sign_in(self.staff["admin"][0].username, PASSWORD)
        return {"api": clerk, "clerk": clerk, "supervisor": supervisor, "admin": admin, "public": Client(self.port)}

    def request(self, clients: dict[str, Client], kind: str, rng: random.Random) -> None:
        case = rng.choice(self.cases)
        track = f"case_no={case.case_no}&code={case.code}"
        who, path = {
            "track_api": ("public", f"/api/v1/track?{track}"),
            "track_page": ("public", f"/track?{track}"),
            "list": ("api", f"/api/v1/cases?per_page=20&page={rng.randint(1, 5)}"),
            "list_filtered": ("api", f"/api/v1/cases?department={rng.choice(['taxation', 'bank', 'service_window'])}"),
            "case_api": ("api", f"/api/v1/cases/{case.case_no}"),
            "events": ("api", f"/api/v1/cases/{case.case_no}/events"),
            "notifications": ("supervisor", "/api/v1/notifications"),  # supervisors' and admins' only
            "case_page": ("clerk", f"/cases/{case.case_no}"),
            "queue": ("clerk", "/queue"),
            "board": ("supervisor", "/board"),
            "dashboard": ("admin", "/dashboard"),
            "receipt": ("api", f"/api/v1/cases/{rng.choice(self.finished).case_no}/receipt.pdf"),
        }[kind]
        status, _, _ = clients[who].call("GET", path)
        if status != 200:
            raise RuntimeError(f"{kind} {path}: {status}")

    def client(self, number: int) -> None:
        rng = random.Random(number)
        clients = self._clients(rng)
        mix = itertools.cycle(MIX[number * 5:] + MIX[:number * 5])
        try:
            while not self.failures:
                with self.lock:
                    sent = next(self.counter)
                if sent > self.total:
                    return
                kind = "receipt" if sent % RECEIPT_EVERY == 0 else next(mix)
                self.request(clients, kind, rng)
                if sent % SAMPLE_EVERY == 0:
                    self.on_sample(sent)
        except Exception as error:  # a failed request ends the run, named in the report
            self.failures.append(repr(error))
        finally:
            for client in {id(c): c for c in clients.values()}.values():
                client.close()

    def go(self) -> None:
        threads = [threading.Thread(target=self.client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.failures:
            raise RuntimeError(f"run failed: {self.failures[0]}")


def one_run(env: dict, staff: dict, cases: list, total: int) -> tuple[float, float, float, float, list[list[int]]]:
    """A fresh server: (floor MB, peak MB, largest sample MB, growth MB, samples), where samples are
    [requests, RSS KiB per worker]."""
    with Server("wsgi:app", env) as server:
        workers = server.worker_pids()
        # Every kind of request once per client thread, so that each worker has served each kind.
        warm = Load(server.port, staff, cases, len(MIX) * CLIENTS, lambda _: None)
        warm.finished = warm.finished or cases
        warm.go()
        rng = random.Random(0)
        clients = warm._clients(rng)
        for _ in range(2 * len(workers)):
            warm.request(clients, "receipt", rng)
        for client in {id(c): c for c in clients.values()}.values():
            client.close()
        floor = max(rss_kib(pid)[0] for pid in workers) / 1024
        samples: list[list[int]] = []
        lock = threading.Lock()

        def sample(sent: int) -> None:
            with lock:
                samples.append([sent, *(rss_kib(pid)[0] for pid in workers)])

        Load(server.port, staff, cases, total, sample).go()
        peak = max(rss_kib(pid)[1] for pid in workers) / 1024
    samples.sort()
    by_count = {row[0]: row[1:] for row in samples}
    first = by_count.get(2 * SAMPLE_EVERY) or samples[min(1, len(samples) - 1)][1:]
    last = samples[-1][1:]
    growth = max(after - before for before, after in zip(first, last)) / 1024
    largest = max(max(row[1:]) for row in samples) / 1024
    return floor, peak, largest, growth, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--runs", type=int, default=RUNS)
    options = parser.parse_args()

    url = postgres_url()
    if url is None:
        sys.exit("memory needs PostgreSQL: run under bin/with-postgres")
    staff = seed_staff(url, {"taxation": 1})
    staff["supervisor"] = seed_staff(url, {"taxation": 1}, role="supervisor")["taxation"]
    staff["admin"] = seed_staff(url, {None: 1}, role="admin")[None]
    cases = seed_cases(url, options.cases)
    analyze(url)
    env = app_env(url, TRACK_LIMIT=ABOVE_THE_RUN, TRACK_MISS_LIMIT=ABOVE_THE_RUN, VERIFY_LIMIT=ABOVE_THE_RUN)
    floors, peaks, largests, growths, all_samples = [], [], [], [], []
    for run in range(options.runs):
        floor, peak, largest, growth, samples = one_run(env, staff, cases, options.requests)
        floors.append(floor), peaks.append(peak), largests.append(largest), growths.append(growth)
        all_samples.append(samples)
        print(f"run {run + 1}: after warm-up {floor:.1f} MB, peak {peak:.1f} MB, growth "
              f"{2 * SAMPLE_EVERY}→{options.requests} {growth:+.1f} MB; RSS MB per 1 000: "
              + " ".join("/".join(f"{kib / 1024:.0f}" for kib in row[1:]) for row in samples), flush=True)

    floor, peak, growth = Figures(floors, "MB"), Figures(peaks, "MB"), Figures(growths, "MB")
    largest = Figures(largests, "MB")
    server = Server("wsgi:app").settings
    note = (f"{options.requests:,} requests per run from {CLIENTS} client threads (tracking API and page, REST lists, "
            f"case and events, queue, board, dashboard, case pages, a receipt PDF every {RECEIPT_EVERY}) on "
            f"{options.cases} cases; {server}; the larger worker's VmHWM; floor: its RSS after one request of each "
            f"kind; tracking limits above the run ('{ABOVE_THE_RUN}')")
    extra = {"samples_kib": all_samples, "server": server, "requests": options.requests, "ratio_as": "times"}
    record("memory", Result(
        benchmark="memory", figure="peak worker RSS", measured=peak.as_dict(), ceiling=floor.as_dict(),
        target=f"< {TARGET_MB:.0f} MB", met=peak.median < TARGET_MB, database="postgresql", notes=note, extra=extra))
    record("memory", Result(
        benchmark="memory", figure="largest sampled worker RSS", measured=largest.as_dict(), ceiling=floor.as_dict(),
        target=f"< {TARGET_MB:.0f} MB", met=largest.median < TARGET_MB, database="postgresql",
        notes=f"the larger worker's RSS at the samples every {SAMPLE_EVERY:,} requests (VmRSS); the peak above "
              f"(VmHWM) also counts what lives only during a request, e.g. argon2's 64 MiB per sign-in",
        extra={"ratio_as": "times"}))
    record("memory", Result(
        benchmark="memory", figure=f"RSS growth {2 * SAMPLE_EVERY:,}→{options.requests:,} requests",
        measured=growth.as_dict(), target=f"< {TARGET_GROWTH_MB:.0f} MB (not growing)",
        met=growth.median < TARGET_GROWTH_MB, database="postgresql",
        notes="RSS after the last sample less RSS at 2 000 requests, the larger of the two workers'"))


if __name__ == "__main__":
    main()
