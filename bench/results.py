"""Write ``bench/RESULTS.md`` from what the benchmark scripts recorded in ``bench/results/``.

Each figure appears with its min–max and number of runs, beside its ceiling (what the machine does
at best, measured in the same run), the ratio of the two, its target, and whether it was met. Run
by ``make bench`` after the scripts; on its own: ``.venv/bin/python bench/results.py``.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import RESULTS_DIR, Figures, fmt, git_revision, machine  # noqa: E402

OUT = Path(__file__).resolve().parent / "RESULTS.md"
ORDER = ["engine", "whole_case", "clerk_http", "track_burst", "province", "receipt", "memory"]


def _cell(measured: dict | None) -> str:
    if not measured:
        return ""
    figures = Figures(measured["values"], measured["unit"])
    return f"{fmt(figures.median)} {figures.unit} ({fmt(figures.low)}–{fmt(figures.high)}, n={len(figures.values)})"


def _ratio(result: dict) -> str:
    ceiling, measured = result.get("ceiling"), result["measured"]
    if not ceiling or ceiling["unit"] != measured["unit"] or not ceiling["median"]:
        return ""
    return f"{measured['median'] / ceiling['median']:.0%}" if result["extra"].get("ratio_as") != "times" \
        else f"{measured['median'] / ceiling['median']:.2f}×"


def main() -> None:
    files = sorted(RESULTS_DIR.glob("*.json"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem))
    if not files:
        sys.exit("no results in bench/results/: run `make bench` (or a script in bench/) first")
    runs = [json.loads(path.read_text()) for path in files]
    box = machine()
    box["postgresql"] = next((r["machine"]["postgresql"] for r in runs if r["machine"].get("postgresql")), None)
    lines = [
        "# Benchmark results",
        "",
        f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `make bench` at revision `{git_revision()}`.",
        f"Machine: {box['cpu']}, {box['cores']} cores, {box['memory']}; {box['system']}; Python {box['python']}"
        + (f"; PostgreSQL {box['postgresql']} (throwaway, as `bin/with-postgres` starts it: fsync off)"
           if box["postgresql"] else "") + ".",
        "",
        "Each figure is the median of its runs with the min–max; the ceiling is what this machine's database or",
        "web stack does at best, measured in the same run (see each script's docstring).",
        "",
        "| benchmark | figure | database | measured | ceiling | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    missed = []
    for run in runs:
        for result in run["results"]:
            met = {True: "yes", False: "**no**", None: "—"}[result["met"]]
            if result["met"] is False:
                missed.append(result)
            lines.append(f"| {result['benchmark']} | {result['figure']} | {result.get('database') or ''} | "
                         f"{_cell(result['measured'])} | {_cell(result.get('ceiling'))} | {_ratio(result)} | "
                         f"{result['target']} | {met} |")
    notes = [(r, n) for run in runs for r in run["results"] if (n := r.get("notes"))]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- **{r['benchmark']} / {r['figure']}**: {n}" for r, n in notes]
    lines += ["", "## Targets missed", ""]
    lines += [f"- {r['benchmark']} / {r['figure']} ({r.get('database') or 'any'}): {r['target']}" for r in missed] \
        or ["None."]
    lines += ["", "Recorded by (with the machine's 1, 5 and 15-minute load averages then, where known; on "
              f"{box['cores']} cores anything above {box['cores']} means other work shared them):", ""]
    lines += [f"- `bench/{run['script']}.py` at {run['recorded_at']}"
              + (f", load {' / '.join(str(x) for x in load)}" if (load := run["machine"].get("load")) else "")
              for run in runs]
    lines += [""]
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main()
