"""Clerk latency through HTTP: 20 clerks working cases at once against gunicorn on PostgreSQL.

What is measured: the time from sending a request to the last byte of its response, as a clerk's
browser or the provincial platform sees it, for every action of a whole case through the REST API
with bearer tokens (contract §4): the window submits and accepts (``submit``, ``accept``), each
agency claims and completes its steps (``claim``, ``complete``: registration, then seal, tax and
bank in parallel, then invoice), the window delivers (``deliver``). 20 clerks — 4 window, 4 market
regulation, 3 public security, 5 taxation, 4 bank — are threads of this script, each with its own
token and keep-alive connection (``http.client``), taking work from their department's queue as
the responses make steps ready. Each clerk pauses between actions (exponential, mean ``--think``,
1 s): 20 clerks then send about 15–20 actions a second, a hundred times what a hall's real clerks
do (a province's whole day of cases is about 50 000 actions), without turning the benchmark into a
measure of the queue in front of a saturated server. Each run pushes ``--cases`` cases through
(13 requests each); p50 and p95 per action and overall, per run; five runs after a warm-up run.
The same cases again with no pauses give the server's capacity (requests per second).

The ceiling, in the same run: the same gunicorn and app, the same 20 threads, pauses and number of
requests, answering a trivial route: ``/healthz`` (one ``SELECT 1`` through the app's session and
every hook of the app); without pauses, its requests per second. What is left between the two is the
app's own work per action.

Server: ``wsgi:app`` under gunicorn gthread, 2 workers × 4 threads (one process per core, threads
to overlap database waits), on a fresh migrated PostgreSQL database seeded through the engine's
operations. The client's own CPU (this process, all threads) is measured and recorded per request:
it shares the 2 cores with the server and PostgreSQL.

Run: ``bin/with-postgres .venv/bin/python bench/clerk_http.py`` (about five minutes).
Target: p95 of every action under 50 ms.
"""
from __future__ import annotations

import argparse
import queue
import random
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RUNS, Figures, Result, percentile, postgres_url, record  # noqa: E402
from http_server import TRIVIAL_PATH, Client, Server, Staff, app_env, process_cpu_seconds, seed_staff  # noqa: E402

CLERKS = {"service_window": 4, "market_regulation": 4, "public_security": 3, "taxation": 5, "bank": 4}
ACTIONS = ("submit", "accept", "claim", "complete", "deliver")
TARGET_MS = 50.0
API = "/api/v1"
OUTPUTS = {
    "registration": lambda rng, n: {"uscc": _uscc(rng), "licence_no": f"440111{n:09d}"},
    "seal": lambda rng, n: {"filing_no": f"GA{n:09d}", "seals": ["company", "finance", "invoice"]},
    "tax": lambda rng, n: {"taxpayer_type": "small_scale", "ukey_issued": True},
    "invoice": lambda rng, n: {"invoice_kind": "digital_ordinary", "quantity": 25},
    "bank": lambda rng, n: {"bank_name": "中国工商银行广州白云支行", "account_no": f"3602{n:014d}"},
}


def _uscc(rng: random.Random) -> str:
    from workflow.identifiers import make_uscc

    body = "MA" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    return make_uscc("9", "1", "440111", body)


def _application(rng: random.Random, number: int) -> dict:
    from workflow.demo import application

    return application(rng, f"广州市白云区压测科技有限公司{number:06d}")


class Run:
    """One run: the clerks' threads pushing ``cases`` cases from submission to delivery."""

    def __init__(self, port: int, tokens: dict[str, list[Staff]], cases: int, think_ms: float, seed: int):
        self.port, self.tokens, self.cases, self.think = port, tokens, cases, think_ms / 1000
        self.queues = {department: queue.Queue() for department in CLERKS}
        self.to_deliver: queue.Queue = queue.Queue()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        self.submitted = 0
        self.delivered = 0
        self.failures: list[str] = []
        self.done = threading.Event()
        self.seed = seed

    def _take_submission(self) -> bool:
        with self.lock:
            if self.submitted >= self.cases:
                return False
            self.submitted += 1
            return True

    def _time(self, action: str, seconds: float) -> None:
        with self.lock:
            self.latencies[action].append(seconds * 1000)

    def _call(self, client: Client, action: str, method: str, path: str, body=None) -> dict:
        status, data, seconds = client.call(method, path, body)
        self._time(action, seconds)
        if status >= 300:
            raise RuntimeError(f"{action} {path}: {status} {data}")
        return data

    def _pause(self, rng: random.Random) -> None:
        if self.think:
            time.sleep(rng.expovariate(1 / self.think))

    def window(self, token: str, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        client = Client(self.port, token)
        try:
            while not self.done.is_set():
                try:  # delivering a ready case comes before taking a new application
                    case_no = self.to_deliver.get_nowait()
                except queue.Empty:
                    if self._take_submission():
                        case = self._call(client, "submit", "POST", f"{API}/cases",
                                          _application(rng, rng.randrange(10**6)))
                        self._pause(rng)
                        case = self._call(client, "accept", "POST", f"{API}/cases/{case['case_no']}/accept", {})
                        self._dispatch(case, None)
                        self._pause(rng)
                        continue
                    try:
                        case_no = self.to_deliver.get(timeout=0.05)
                    except queue.Empty:
                        continue
                self._call(client, "deliver", "POST", f"{API}/cases/{case_no}/deliver", {"method": "counter"})
                with self.lock:
                    self.delivered += 1
                    if self.delivered == self.cases:
                        self.done.set()
                self._pause(rng)
        except Exception as error:  # a failed request ends the run, named in the report
            self.failures.append(repr(error))
            self.done.set()
        finally:
            client.close()

    def agency(self, department: str, token: str, number: int) -> None:
        rng = random.Random(self.seed * 1000 + 100 + number)
        client = Client(self.port, token)
        work = self.queues[department]
        try:
            while not self.done.is_set():
                try:
                    case_no, step = work.get(timeout=0.05)
                except queue.Empty:
                    continue
                self._call(client, "claim", "POST", f"{API}/cases/{case_no}/steps/{step}/claim")
                self._pause(rng)
                case = self._call(client, "complete", "POST", f"{API}/cases/{case_no}/steps/{step}/complete",
                                  OUTPUTS[step](rng, rng.randrange(10**9)))
                self._dispatch(case, step)
                self._pause(rng)
        except Exception as error:
            self.failures.append(repr(error))
            self.done.set()
        finally:
            client.close()

    def _dispatch(self, case: dict, completed: str | None) -> None:
        """Queue the steps this response made ready, and the case for delivery once it is ready."""
        for step in case["steps"]:
            became_ready = (not step["needs"]) if completed is None else completed in step["needs"]
            if step["state"] == "ready" and became_ready:
                self.queues[step["department"]].put((case["case_no"], step["step"]))
        if case["state"] == "ready":
            self.to_deliver.put(case["case_no"])

    def go(self) -> tuple[dict[str, list[float]], float, float]:
        """Run the clerks to the end; the latencies per action (ms), wall seconds, client CPU seconds."""
        threads = [threading.Thread(target=self.window, args=(token, n))
                   for n, token in enumerate(staff.token for staff in self.tokens["service_window"])]
        threads += [threading.Thread(target=self.agency, args=(department, token, n))
                    for department in CLERKS if department != "service_window"
                    for n, token in enumerate(staff.token for staff in self.tokens[department])]
        cpu, start = process_cpu_seconds(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall, cpu = time.perf_counter() - start, process_cpu_seconds() - cpu
        if self.failures:
            raise RuntimeError(f"run failed: {self.failures[0]}")
        return dict(self.latencies), wall, cpu


def trivial_run(port: int, clerks: int, requests: int, think_ms: float, seed: int) -> tuple[list[float], float, float]:
    """The ceiling: ``clerks`` threads with the same pauses sharing ``requests`` GETs of a trivial route."""
    latencies: list[float] = []
    lock = threading.Lock()
    left = [requests]

    def clerk(number: int) -> None:
        rng = random.Random(seed * 1000 + 500 + number)
        client = Client(port)
        try:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                status, _, seconds = client.call("GET", TRIVIAL_PATH)
                assert status == 200, status
                with lock:
                    latencies.append(seconds * 1000)
                if think_ms:
                    time.sleep(rng.expovariate(1000 / think_ms))
        finally:
            client.close()

    threads = [threading.Thread(target=clerk, args=(n,)) for n in range(clerks)]
    cpu, start = process_cpu_seconds(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start, process_cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=30, help="cases per run (13 requests each)")
    parser.add_argument("--think", type=float, default=1000.0, help="mean pause between a clerk's actions, ms")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    options = parser.parse_args()

    url = postgres_url()
    if url is None:
        sys.exit("clerk_http needs PostgreSQL: run under bin/with-postgres")
    tokens = seed_staff(url, CLERKS)
    clerks = sum(CLERKS.values())
    server = Server("wsgi:app", app_env(url), workers=options.workers, threads=options.threads)
    per_action: dict[str, list[tuple[float, float]]] = defaultdict(list)  # (p50, p95) per run
    ceiling: list[tuple[float, float]] = []
    offered, client_cpu, saturated, saturated_ceiling = [], [], [], []
    with server:
        for run in range(-1, options.runs):  # run -1 warms up: imports, pools, caches, plans
            seed = run + 10
            latencies, wall, cpu = Run(server.port, tokens, options.cases, options.think, seed).go()
            everything = [ms for values in latencies.values() for ms in values]
            count = len(everything)
            trivial, _, trivial_cpu = trivial_run(server.port, clerks, count, options.think, seed)
            # The same work with no pauses: how many actions a second the server can take at all.
            _, busy_wall, _ = Run(server.port, tokens, options.cases, 0, seed + 100).go()
            _, trivial_wall, _ = trivial_run(server.port, clerks, count, 0, seed + 100)
            if run < 0:
                continue
            for action in ACTIONS:
                per_action[action].append((percentile(latencies[action], 50), percentile(latencies[action], 95)))
            per_action["overall"].append((percentile(everything, 50), percentile(everything, 95)))
            ceiling.append((percentile(trivial, 50), percentile(trivial, 95)))
            offered.append(count / wall)
            client_cpu.append(cpu / count * 1000)
            saturated.append(count / busy_wall)
            saturated_ceiling.append(count / trivial_wall)
            print(f"run {run + 1}: {count} requests in {wall:.1f} s ({count / wall:.0f}/s), overall p50 "
                  f"{per_action['overall'][-1][0]:.1f} ms p95 {per_action['overall'][-1][1]:.1f} ms; trivial route "
                  f"p95 {ceiling[-1][1]:.1f} ms; client CPU {cpu / count * 1000:.2f} ms/request "
                  f"(trivial {trivial_cpu / count * 1000:.2f}); without pauses {saturated[-1]:.0f} requests/s "
                  f"(trivial {saturated_ceiling[-1]:.0f}/s)", flush=True)

    ceiling_p95 = Figures([p95 for _, p95 in ceiling], "ms")
    ceiling_p50 = Figures([p50 for p50, _ in ceiling], "ms")
    rate = Figures(offered, "requests/s")
    client = Figures(client_cpu, "ms CPU/request")
    busy, busy_ceiling = Figures(saturated, "requests/s"), Figures(saturated_ceiling, "requests/s")
    note = (f"{clerks} clerk threads (keep-alive http.client), pauses exponential with mean {options.think:.0f} ms "
            f"(so {rate} were sent), {options.cases} cases (×13 requests) per run; {server.settings}; ceiling: "
            f"the same server answering {TRIVIAL_PATH} with the same threads, pauses and request count; client "
            f"CPU {client} (it shares the 2 cores with gunicorn and PostgreSQL)")
    extra_common = {"ratio_as": "times", "ceiling_p50": ceiling_p50.as_dict(), "throughput": rate.as_dict(),
                    "client_cpu": client.as_dict(), "server": server.settings, "think_ms": options.think,
                    "cases_per_run": options.cases}
    for action in (*ACTIONS, "overall"):
        p50 = Figures([p50 for p50, _ in per_action[action]], "ms")
        p95 = Figures([p95 for _, p95 in per_action[action]], "ms")
        record("clerk_http", Result(
            benchmark="clerk latency (HTTP)", figure=f"{action} p95", measured=p95.as_dict(),
            ceiling=ceiling_p95.as_dict(), target=f"p95 < {TARGET_MS:.0f} ms", met=p95.median < TARGET_MS,
            database="postgresql", notes=note if action == "overall" else "",
            extra={**extra_common, "p50": p50.as_dict()}))
        print(f"  {action:9} p50 {p50}   p95 {p95}")
    print(f"  trivial   p50 {ceiling_p50}   p95 {ceiling_p95}")
    record("clerk_http", Result(
        benchmark="clerk latency (HTTP)", figure="throughput without pauses", measured=busy.as_dict(),
        ceiling=busy_ceiling.as_dict(), database="postgresql",
        notes=f"the same {clerks} clerks and cases with no pause between actions: the server's capacity for "
              f"clerks' actions, beside the trivial route's with the same threads"))
    print(f"  without pauses {busy} (trivial route {busy_ceiling})")


if __name__ == "__main__":
    main()
