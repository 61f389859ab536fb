"""What the business calendar's arithmetic costs per call: it must grow with days spanned, not minutes.

Warms the calendar up, then prints the median and the min–max over several runs of the per-call
time of: ``add`` of a case target (210 minutes), ``add`` of 250 working days, ``between`` over one
year; and, for comparison, the very first ``add`` of 250 working days in the process (nothing
cached) and ``add`` of 250 working days on a new calendar (built whenever an admin changes a day;
the package's answers stay cached across calendars). Run: ``.venv/bin/python bench/calendar_arithmetic.py``.
"""
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from workflow.calendar import HALL_TZ, BusinessCalendar

RUNS, N = 7, 2000

calendar = BusinessCalendar()
start = datetime(2025, 3, 3, 9, 0, tzinfo=HALL_TZ)
target, working_year = timedelta(minutes=210), timedelta(minutes=250 * calendar.minutes_per_day)
year_start, year_end = datetime(2025, 1, 1, tzinfo=HALL_TZ), datetime(2026, 1, 1, tzinfo=HALL_TZ)


def per_call_ms(fn: Callable[[], object], n: int = N) -> list[float]:
    """Time RUNS runs of n calls each; return the per-call milliseconds of each run."""
    samples = []
    for _ in range(RUNS):
        began = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - began) / n * 1e3)
    return samples


def report(label: str, samples: list[float]) -> None:
    print(f"{label:<34}: median {statistics.median(samples):.4f} ms "
          f"(min {min(samples):.4f}, max {max(samples):.4f}; {RUNS} runs)")


if __name__ == "__main__":
    began = time.perf_counter()
    calendar.add(start, working_year)
    first_ms = (time.perf_counter() - began) * 1e3
    cases = {
        "add 210 minutes": lambda: calendar.add(start, target),
        "add 250 working days": lambda: calendar.add(start, working_year),
        "between over one year": lambda: calendar.between(year_start, year_end),
    }
    for fn in cases.values():  # warm-up: fills the day cache and the interpreter's caches
        for _ in range(200):
            fn()
    for label, fn in cases.items():
        report(label, per_call_ms(fn))
    report("add 250 working days, new calendar", per_call_ms(lambda: BusinessCalendar().add(start, working_year), 50))
    print(f"{'add 250 working days, first call':<34}: {first_ms:.4f} ms (once; nothing cached)")
