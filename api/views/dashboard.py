"""The dashboard of supervisors and admins: the hall's figures over a period, as charts and tables.

Figures come from ``workflow.reports`` (computed by the database); the charts are SVG drawn here
with pygal (``api.charts``), and every chart has a table with the same figures beside it. A
supervisor sees the hall's case figures and their own agency's step figures and breaches; an admin
sees every agency. The period is two hall dates, ``from`` and ``to`` (both included), by default the
last 30 days; a bad one shows the page again with the error beside the field.

**CSV export.** Each table has a link to ``/dashboard.csv?table=<key>&from=…&to=…``, which sends
exactly the rows the table shows, built by the same code. Decisions:

- The header row has stable English keys (``day,opened,completed``), whatever the page's language,
  so a spreadsheet or script built on one export reads the next. The cells are the table's own
  values, as shown: names (agencies, steps, states) in the page's language, numbers without
  units. Three exceptions, each marked on the cell as ``data-csv``: times are ISO 8601 with the
  hall's offset (``2026-11-23T11:30:00+08:00``) where the page writes ``2026-11-23 11:30``; a
  missing value is an empty cell, not "—"; and the ratings table's measures are keys too
  (``count``, ``average``, ``score_5`` …), because there they play the part of a header.
- UTF-8 with a byte-order mark and CRLF line ends (RFC 4180), so Excel opens Chinese correctly on a
  double click; sent as an attachment named after the table and the period.
- Text a person typed (a breach's reason) that starts with ``=``, ``+``, ``-`` or ``@`` gets a
  leading apostrophe, so a spreadsheet shows it instead of running it as a formula (CSV injection).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from workflow import calendar_days, queries, reports
from workflow.actors import SERVICE_WINDOW, Role
from workflow.calendar import HALL_TZ
from workflow.clock import utcnow
from workflow.definitions import store

from .. import charts
from ..database import session
from . import page_lang
from .staff import CASE_STATES, roles

bp = Blueprint("dashboard", __name__)

DEFAULT_DAYS = 30
MOST_DAYS = 366  # a year of days is still a legible chart and a quick query
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------- the period

@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def _today() -> date:
    return utcnow().astimezone(HALL_TZ).date()


def _period(args) -> tuple[Period | None, dict[str, list[str]], dict[str, str]]:
    """The period asked for (or the last 30 days), the errors by field, and what was typed."""
    today = _today()
    typed = {"from": (args.get("from") or "").strip(), "to": (args.get("to") or "").strip()}
    days, errors = {}, {}
    for name, default in (("from", today - timedelta(days=DEFAULT_DAYS - 1)), ("to", today)):
        if not typed[name]:
            days[name] = default
            continue
        try:
            days[name] = date.fromisoformat(typed[name])
        except ValueError:
            errors[name] = [_("Enter a date as YYYY-MM-DD, for example %(example)s.", example=today.isoformat())]
    if not errors:
        if days["from"] > days["to"]:
            errors["to"] = [_("The end must not be before the start.")]
        elif (days["to"] - days["from"]).days + 1 > MOST_DAYS:
            errors["from"] = [_("Choose at most %(days)s days.", days=MOST_DAYS)]
    if errors:
        return None, errors, typed
    return Period(days["from"], days["to"]), {}, {name: days[name].isoformat() for name in days}


# ---------------------------------------------------------------- tables, as the page and the CSV share them

@dataclass(frozen=True)
class Column:
    key: str  # the CSV header: stable, English
    label: str  # the table's heading, in the page's language
    numeric: bool = False
    nowrap: bool = False  # dates, times and case numbers stay on one line


@dataclass(frozen=True)
class Cell:
    text: str  # as the page shows it
    value: str | None = None  # as the CSV has it, when it differs (times in ISO 8601; "" for none)
    href: str | None = None

    @property
    def csv(self) -> str:
        return self.text if self.value is None else self.value


NONE = Cell("—", "")


@dataclass
class Section:
    """One block of the dashboard: a table, and the chart drawn from the same figures (if any)."""

    key: str
    heading: str
    caption: str
    columns: list[Column]
    rows: list[list[Cell]]
    empty: str
    note: str | None = None
    draw: Callable[[], charts.Chart] | None = None
    chart: charts.Chart | None = field(default=None, init=False)


def _number(value: float | int | None, places: int = 1) -> Cell:
    """A figure with at most ``places`` decimals and no trailing zeros: 85, 85.5."""
    if value is None:
        return NONE
    text = f"{value:.{places}f}".rstrip("0").rstrip(".") if places else str(int(round(value)))
    return Cell(text)


def _time(moment: datetime) -> Cell:
    local = moment.astimezone(HALL_TZ)
    return Cell(local.strftime("%Y-%m-%d %H:%M"), local.isoformat(timespec="seconds"))


def _text(value: str | None) -> Cell:
    if not value:
        return NONE
    return Cell(value, "'" + value if value.startswith(FORMULA_STARTS) else value)


class Names:
    """Departments and steps by key, titled in the page's language (an unknown key as it is)."""

    def __init__(self):
        self.lang = page_lang()
        definition = store.current(session())
        self.departments = {key: names[self.lang] for key, names in definition.departments.items()}
        self.steps = {step.key: step.title[self.lang] for step in definition.steps}
        self.promise = definition.case_target_minutes  # 210: half a working day
        # Agencies in the order the process reaches them: registration's first, the bank's last.
        self.order = list(dict.fromkeys(step.department for step in definition.steps))

    def department(self, key: str) -> str:
        return self.departments.get(key, key)

    def subject(self, key: str) -> str:
        return _("The whole case") if key == reports.CASE_SUBJECT else self.steps.get(key, key)


def _daily(period: Period, department: str | None, names: Names) -> Section:
    counts = reports.daily_counts(session(), start=period.start, end=period.end)
    opened, completed = _("Opened (accepted)"), _("Completed (ready)")
    total_opened, total_completed = sum(d.opened for d in counts), sum(d.completed for d in counts)
    return Section(
        "daily", _("Cases opened and completed per day"),
        _("Cases accepted and cases ready, per day (%(opened)s opened, %(completed)s completed)",
          opened=total_opened, completed=total_completed),
        [Column("day", _("Day"), nowrap=True), Column("opened", opened, True), Column("completed", completed, True)],
        [[Cell(d.day.isoformat()), Cell(str(d.opened)), Cell(str(d.completed))] for d in counts],
        _("No days in this period."),
        draw=lambda: charts.daily_bars(
            "daily", [d.day for d in counts], [(opened, [d.opened for d in counts]),
                                               (completed, [d.completed for d in counts])],
            title=_("Cases opened and completed per day"),
            desc=_("Bars per day from %(start)s to %(end)s: %(opened)s cases opened and %(completed)s completed "
                   "in all.", start=period.start.isoformat(), end=period.end.isoformat(), opened=total_opened,
                   completed=total_completed),
            no_data=_("No cases in this period.")))


def _distribution(period: Period, department: str | None, names: Names) -> Section:
    buckets = reports.distribution(session(), start=period.start, end=period.end)
    total = sum(b.count for b in buckets)
    within = sum(b.count for b in buckets if b.upper <= names.promise)
    return Section(
        "distribution", _("Working time from acceptance to ready"),
        _("Cases ready in the period by working minutes used (%(within)s of %(total)s within %(minutes)s minutes)",
          within=within, total=total, minutes=names.promise),
        [Column("from_minutes", _("From minute"), True), Column("to_minutes", _("To minute"), True),
         Column("cases", _("Cases"), True)],
        [[Cell(str(b.lower)), Cell(str(b.upper)), Cell(str(b.count))] for b in buckets],
        _("No case became ready in this period."),
        note=_("Each row counts the cases whose working time was at least its first minute and less than its "
               "last. The promise is %(minutes)s working minutes.", minutes=names.promise),
        draw=lambda: charts.histogram(
            "distribution", [(b.lower, b.upper, b.count) for b in buckets], promise_minutes=names.promise,
            within=_("Within %(minutes)s minutes", minutes=names.promise),
            over=_("Over %(minutes)s minutes", minutes=names.promise),
            promise=_("Promise: %(minutes)s min", minutes=names.promise),
            title=_("Working time from acceptance to ready"),
            desc=_("A histogram of %(total)s cases by working minutes, in steps of 30 minutes; %(within)s were "
                   "ready within the promise of %(minutes)s minutes, a dashed line.", total=total, within=within,
                   minutes=names.promise),
            no_data=_("No case became ready in this period.")))


def _agencies(period: Period, department: str | None, names: Names) -> Section:
    figures = reports.elapsed(session(), start=period.start, end=period.end, group_by="department",
                              department=department)
    order = names.order
    figures.sort(key=lambda f: (order.index(f.group) if f.group in order else len(order), f.group))
    median, p90 = _("Median (min)"), _("90th percentile (min)")
    return Section(
        "agencies", _("Each agency's working time per step"),
        _("Steps done in the period, by agency (working minutes from ready to done)"),
        [Column("agency", _("Agency")), Column("steps", _("Steps done"), True), Column("median_minutes", median, True),
         Column("p90_minutes", p90, True), Column("max_minutes", _("Longest (min)"), True),
         Column("within_target_pct", _("Within target (%)"), True)],
        [[Cell(names.department(f.group)), Cell(str(f.count)), _number(f.median_minutes), _number(f.p90_minutes),
          _number(f.max_minutes), _number(f.within_target_pct)] for f in figures],
        _("The service window has no steps of its own: its figures are the cases' above.")
        if department == SERVICE_WINDOW else _("No step was done in this period."),
        draw=lambda: charts.grouped_hbars(
            "agencies", [names.department(f.group) for f in figures],
            [(median, [f.median_minutes for f in figures]), (p90, [f.p90_minutes for f in figures])],
            title=_("Each agency's median and 90th percentile working time per step"),
            desc=" ".join(_("%(agency)s: median %(median)s, 90th percentile %(p90)s working minutes over %(count)s "
                            "steps.", agency=names.department(f.group), median=_number(f.median_minutes).text,
                            p90=_number(f.p90_minutes).text, count=f.count) for f in figures)
            or _("No step was done in this period."),
            no_data=_("No step was done in this period.")))


def _within(period: Period, department: str | None, names: Names) -> Section:
    figures = reports.elapsed(session(), start=period.start, end=period.end, group_by="day")
    by_day = {f.group: f for f in figures}
    share = _("Within %(minutes)s minutes (%%)", minutes=names.promise)
    return Section(
        "within", _("Cases ready within the promise, per day"),
        _("Cases ready per day and the share ready within %(minutes)s working minutes", minutes=names.promise),
        [Column("day", _("Day"), nowrap=True), Column("cases", _("Cases ready"), True),
         Column("within_target_pct", share, True),
         Column("median_minutes", _("Median (min)"), True), Column("p90_minutes", _("90th percentile (min)"), True)],
        [[Cell(f.group), Cell(str(f.count)), _number(f.within_target_pct), _number(f.median_minutes),
          _number(f.p90_minutes)] for f in figures],
        _("No case became ready in this period."),
        note=_("Days on which no case became ready are left out of the table and are gaps in the line."),
        draw=lambda: charts.share_line(
            "within", period.days, share,
            [by_day[d.isoformat()].within_target_pct if d.isoformat() in by_day else None for d in period.days],
            title=_("Share of cases ready within %(minutes)s working minutes, per day", minutes=names.promise),
            desc=_("A line from 0 to 100 per cent over the days from %(start)s to %(end)s, on the %(count)s days on "
                   "which cases became ready.", start=period.start.isoformat(), end=period.end.isoformat(),
                   count=len(figures)),
            no_data=_("No case became ready in this period.")))


def _breaches(period: Period, department: str | None, names: Names) -> Section:
    rows = reports.open_breaches(session(), department=department)
    return Section(
        "breaches", _("Open breaches"),
        _("Time limits breached on cases still running, longest breached first (Beijing time)"),
        [Column("breached_at", _("Breached at"), nowrap=True), Column("case_no", _("Case"), nowrap=True),
         Column("subject", _("Step")),
         Column("agency", _("Agency")), Column("clerk", _("Clerk")), Column("target_minutes", _("Target (min)"), True),
         Column("used_minutes", _("Used when breached (min)"), True), Column("reason", _("Reason given")),
         Column("acknowledged_by", _("Acknowledged by"))],
        [[_time(b.at), Cell(b.case_no, href=f"/cases/{b.case_no}"), Cell(names.subject(b.subject)),
          Cell(names.department(b.department)), _text(b.clerk), _number(b.target_minutes), _number(b.used_minutes),
          _text(b.reason), _text(b.acknowledged_by)] for b in rows],
        _("No breach is open."),
        note=_("Open now, whatever the period: breaches of running cases on steps not yet done."))


def _ratings(period: Period, department: str | None, names: Names) -> Section:
    summary = reports.ratings(session(), start=period.start, end=period.end)
    rows = [("count", _("Ratings given"), Cell(str(summary.count))),
            ("average", _("Average score (1 to 5)"), _number(summary.average, 2))]
    rows += [(f"score_{score}", _("Score %(score)s", score=score), Cell(str(summary.by_score.get(score, 0))))
             for score in sorted(summary.by_score, reverse=True)]
    rows += [("low", _("Poor ratings (1 or 2)"), Cell(str(summary.low))),
             ("follow_ups_open", _("Follow-ups open now"), Cell(str(summary.follow_ups_open))),
             ("follow_ups_overdue", _("Follow-ups overdue now"), Cell(str(summary.follow_ups_overdue)))]
    return Section(
        "ratings", _("Applicants' ratings"), _("Ratings given in the period, and follow-ups of poor ones"),
        [Column("measure", _("Measure")), Column("value", _("Value"), True)],
        [[Cell(label, key), value] for key, label, value in rows], "")


def _states(period: Period, department: str | None, names: Names) -> Section:
    counts = queries.case_counts(session())
    return Section(
        "states", _("Cases by state now"), _("Cases by state (%(total)s in all)", total=sum(counts.values())),
        [Column("state", _("State")), Column("cases", _("Cases"), True)],
        [[Cell(str(CASE_STATES[state])), Cell(str(count))] for state, count in counts.items()], "",
        note=_("Every case in the hall now, whatever the period."))


SECTIONS: dict[str, Callable[[Period, str | None, Names], Section]] = {
    "daily": _daily, "distribution": _distribution, "agencies": _agencies, "within": _within,
    "breaches": _breaches, "ratings": _ratings, "states": _states,
}


def _scope() -> str | None:
    return reports.scope(current_user.as_actor())


# ---------------------------------------------------------------- views

@bp.get("/dashboard")
@roles(Role.supervisor, Role.admin)
def show():
    """The hall's figures over a period: charts, the same figures as tables, CSV links."""
    period, errors, typed = _period(request.args)
    names, department = Names(), _scope()
    sections = []
    if period is not None:
        for build in SECTIONS.values():
            section = build(period, department, names)
            if section.draw is not None:
                section.chart = section.draw()
            sections.append(section)
    days_ahead = calendar_days.confirmed_days_ahead(session(), _today())
    return render_template(
        "dashboard/dashboard.html", period=period, errors=errors, typed=typed, sections=sections,
        department=department and names.department(department), days_ahead=days_ahead,
        horizon_wanted=calendar_days.CONFIRMED_DAYS_WANTED,
        default_days=DEFAULT_DAYS, most_days=MOST_DAYS, is_admin=current_user.role is Role.admin,
    ), 422 if errors else 200


@bp.get("/dashboard.csv")
@roles(Role.supervisor, Role.admin)
def export():
    """One of the dashboard's tables as CSV: the rows the page shows for the same period."""
    build = SECTIONS.get(request.args.get("table", ""))
    if build is None:
        abort(404)
    period, errors, _typed = _period(request.args)
    if period is None:
        return show()
    section = build(period, _scope(), Names())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(column.key for column in section.columns)
    writer.writerows([cell.csv for cell in row] for row in section.rows)
    name = f"onewindow-{section.key}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response("\ufeff" + buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
