"""The dashboard's charts: SVG drawn on the server with pygal, inlined in the page.

pygal puts a ``<script>`` (its tooltips' configuration) and a ``<style>`` into every chart. Both are
taken out here, with the tooltip layer they serve: the pages will be served under a
Content-Security-Policy without inline script, the charts must work without JavaScript anyway, and
``static/css/site.css`` (its "dashboard" section) styles them instead of 10 KB of CSS repeated per
chart. pygal lays a chart out by measuring its labels with the font sizes in ``STYLE``; site.css
sets the same sizes, so what the browser draws is what pygal measured.

Each chart is drawn twice, for a wide screen and a narrow one (narrower, with fewer date labels),
and the page shows one of them by a media query: a single drawing scaled down to 390 px would have
6-pixel labels. Each carries ``role="img"`` with a ``<title>`` and a ``<desc>`` that says what it
shows; the figures themselves are in the table beside every chart.
"""
from __future__ import annotations

import math
import sys
import unicodedata
from dataclasses import dataclass
from datetime import date

import pygal
from markupsafe import Markup
from pygal.style import Style

# pygal appends to sys.meta_path a finder for its map plugins that has only the find_module() of
# before Python 3.4: on 3.11 every failed import that reaches it warns (ImportWarning), which the
# tests' warnings-as-errors turns into errors far from here (3.12 ignores the finder). No map plugin
# is used here, so it is taken out again (Kozea/pygal pull request #532 gives it find_spec()).
sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, pygal.PluginImportFixer)]

# Font sizes pygal measures labels with; static/css/site.css (".chart") draws with the same.
STYLE = Style(
    font_family="sans-serif", label_font_size=12, major_label_font_size=12, legend_font_size=13,
    value_font_size=12, tooltip_font_size=12, title_font_size=14, no_data_font_size=15,
    legend_box_size=12, background="transparent", plot_background="transparent",
)


@dataclass(frozen=True)
class Size:
    name: str  # "wide" or "narrow": the CSS shows the one that fits
    width: int
    height: int
    date_labels: int  # at most this many dates are written under the x axis


SIZES = (Size("wide", 560, 300, 8), Size("narrow", 340, 300, 4))


@dataclass(frozen=True)
class Chart:
    """One chart in both sizes, and what it is about (for ``aria-labelledby``)."""

    key: str
    title: str
    desc: str
    drawings: dict[str, Markup]


def _text_width(text: str, size: int) -> float:
    """How wide a label is drawn: CJK characters take a full em, others about 0.6 (pygal counts 0.6 for all)."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else 0.6 * size for ch in str(text))


def _ticks(top: float, most: int = 6) -> list[int]:
    """Round y-axis ticks from 0 to at least ``top``: whole numbers, at most ``most`` of them."""
    raw = max(top, 1) / (most - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))
    if step != int(step):  # 2.5 below 10 would write 2.5, 7.5: take 5 instead
        step = 2 * step
    step = int(step)
    return list(range(0, step * math.ceil(top / step) + 1, step)) if top > 0 else [0, 1]


def _config(size: Size, no_data: str, **overrides) -> dict:
    config = dict(
        js=[], css=[], disable_xml_declaration=True, no_prefix=True, style=STYLE, width=size.width,
        height=size.height, legend_at_bottom=True, legend_at_bottom_columns=2, truncate_legend=-1,
        truncate_label=-1, print_values=False, show_x_guides=False, show_y_guides=True, margin=6, spacing=8,
        no_data_text=no_data, x_label_rotation=0,
    )
    config.update(overrides)
    return config


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element(parent, name: str, attrs: dict, text: str | None = None):
    """A new element in the parent's namespace (pygal builds with lxml when it is installed)."""
    namespace = parent.tag[:parent.tag.index("}") + 1] if parent.tag.startswith("{") else ""
    element = parent.makeelement(namespace + name, attrs)
    element.text = text
    return element


def _classes(element) -> set[str]:
    return set((element.get("class") or "").split())


def _clean(ident: str, title: str, desc: str):
    """An xml filter: no script, style or tooltips; an id, ``role="img"``, a title and a description."""
    def clean(root):
        for parent in list(root.iter()):
            for child in list(parent):
                if not isinstance(child.tag, str) or _local(child.tag) in ("script", "style", "title", "desc") \
                        or "tooltip-overlay" in _classes(child):  # (comments: pygal's name and today's date)
                    parent.remove(child)
        root.set("id", ident)
        root.set("class", "chart-svg")
        root.set("role", "img")
        root.set("aria-labelledby", f"{ident}-title {ident}-desc")
        root.set("focusable", "false")
        for position, (tag, text) in enumerate((("title", title), ("desc", desc))):
            root.insert(position, _element(root, tag, {"id": f"{ident}-{tag}"}, text))
        return root
    return clean


def _render(chart, ident: str, title: str, desc: str, extra=None) -> Markup:
    if extra is not None:
        chart.add_xml_filter(extra)
    chart.add_xml_filter(_clean(ident, title, desc))
    return Markup(chart.render(is_unicode=True))


def _date_labels(days: list[date], size: Size) -> dict:
    every = max(1, math.ceil(len(days) / size.date_labels))
    return dict(x_labels=[d.strftime("%m-%d") for d in days], x_labels_major_every=every,
                show_minor_x_labels=False)


def daily_bars(key: str, days: list[date], series: list[tuple[str, list[int]]], *, title: str, desc: str,
               no_data: str) -> Chart:
    """Counts per day as grouped bars (opened and completed)."""
    top = max([v for _label, values in series for v in values] + [1])
    drawings = {}
    for size in SIZES:
        chart = pygal.Bar(**_config(size, no_data, y_labels=_ticks(top), **_date_labels(days, size)))
        for label, values in series:
            chart.add(label, values)
        drawings[size.name] = _render(chart, f"chart-{key}-{size.name}", title, desc)
    return Chart(key, title, desc, drawings)


def histogram(key: str, buckets: list[tuple[int, int, int]], *, promise_minutes: int, within: str, over: str,
              promise: str, title: str, desc: str, no_data: str) -> Chart:
    """Cases by elapsed minutes, bars within the promise apart from those over it, the promise a dashed line."""
    top = max([count for _lower, _upper, count in buckets] + [1])
    right = max([upper for _lower, upper, _count in buckets] + [promise_minutes + 30])
    drawings = {}
    for size in SIZES:
        step = 30 if right <= (360 if size.name == "narrow" else 600) else 60 if right <= 1200 else 240
        marks = list(range(0, int(math.ceil(right / step) * step) + 1, step))
        chart = pygal.Histogram(**_config(size, no_data, y_labels=_ticks(top), x_labels=marks,
                                          xrange=(0, marks[-1])))
        chart.add(within, [(c, lo, up) for lo, up, c in buckets if up <= promise_minutes and c] or [None])
        chart.add(over, [(c, lo, up) for lo, up, c in buckets if up > promise_minutes and c] or [None])

        def promise_line(root, chart=chart):
            view = chart.view
            if view is None or not buckets:
                return root
            plot = next(g for g in root.iter() if _classes(g) == {"plot"})
            x = view.x(promise_minutes)
            plot.append(_element(plot, "path", {"d": f"M{x:.1f} 0 v{view.height:.1f}", "class": "promise-line"}))
            # Right of the line when it fits, else left of it (a narrow chart, a short axis).
            room = x + 4 + _text_width(promise, STYLE.label_font_size) <= view.width
            plot.append(_element(plot, "text", {"x": f"{x + 4 if room else x - 4:.1f}", "y": "14",
                                                "text-anchor": "start" if room else "end", "class": "promise-label"},
                                 promise))
            return root

        drawings[size.name] = _render(chart, f"chart-{key}-{size.name}", title, desc, promise_line)
    return Chart(key, title, desc, drawings)


def grouped_hbars(key: str, groups: list[str], series: list[tuple[str, list[float | None]]], *, title: str,
                  desc: str, no_data: str) -> Chart:
    """One row of bars per group (an agency), one bar per series (median, p90), longest scale shared."""
    top = max([v for _label, values in series for v in values if v is not None] + [1])
    drawings = {}
    for size in SIZES:
        widest = max([_text_width(g, STYLE.label_font_size) for g in groups] + [0])
        measured = max([0.6 * STYLE.label_font_size * len(g) for g in groups] + [0])
        rows = max(1, len(groups))
        height = min(size.height, 90 + 60 * rows) if groups else 160
        # pygal draws the first group at the bottom: reversed, the list reads from the top.
        chart = pygal.HorizontalBar(**_config(
            size, no_data, height=height, x_labels=groups[::-1], margin_left=int(widest - measured) + 6,
            y_labels=_ticks(top, most=5 if size.name == "narrow" else 6)))
        for label, values in series:
            chart.add(label, values[::-1])
        drawings[size.name] = _render(chart, f"chart-{key}-{size.name}", title, desc)
    return Chart(key, title, desc, drawings)


def share_line(key: str, days: list[date], label: str, values: list[float | None], *, title: str, desc: str,
               no_data: str) -> Chart:
    """A share in per cent per day, 0 to 100; a day without cases is a gap."""
    drawings = {}
    for size in SIZES:
        chart = pygal.Line(**_config(size, no_data, range=(0, 100), y_labels=[0, 25, 50, 75, 100],
                                     allow_interruptions=True, dots_size=3, show_legend=False,
                                     **_date_labels(days, size)))
        chart.add(label, values)
        drawings[size.name] = _render(chart, f"chart-{key}-{size.name}", title, desc)
    return Chart(key, title, desc, drawings)
