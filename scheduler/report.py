"""The HTML report: one self-contained file, charts drawn as inline SVG.

No script, no font, no style sheet from elsewhere: the file opens offline and asks no
other host for anything (a report mailed around must not call home). Charts are
written by the small functions below rather than a chart library, which would add a
few hundred kilobytes of script to every report; each chart carries its title, axis
labels with units, and a caption saying how to read it.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from scoring import evaluation as ev

__all__ = ["Chart", "backtest_report", "bar_chart", "line_chart", "page", "state_report"]

_W, _H = 640, 300
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 64, 16, 16, 48
_COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]
_BAND_COLORS = {"hot": "#dc2626", "warm": "#ea580c", "cold": "#2563eb"}


@dataclass
class Chart:
    """A chart's SVG with the words around it."""

    id: str
    title: str
    svg: str
    caption: str = ""

    def html(self) -> str:
        return (
            f'<figure class="chart" id="{_e(self.id)}" data-chart="{_e(self.id)}">'
            f"<h3>{_e(self.title)}</h3>{self.svg}"
            f"<figcaption>{_e(self.caption)}</figcaption></figure>"
        )


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(round(value, 10))
        value += step
    if not out or out[-1] < high:
        # The top tick covers the largest value, so no bar rises above the frame.
        out.append(round(value, 10))
    return out


def _frame(
    x_label: str, y_label: str, y_ticks: Sequence[float], y_of: Any, y_fmt: Any = _fmt
) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" class="plot">',
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
    ]
    for tick in y_ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{_e(y_fmt(tick))}</text>"
        )
    parts.append(
        f'<line x1="{_PAD_L}" x2="{_PAD_L}" y1="{_PAD_T}" y2="{_H - _PAD_B}" stroke="#374151"/>'
        f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{_H - _PAD_B}" y2="{_H - _PAD_B}" '
        'stroke="#374151"/>'
        f'<text x="{(_PAD_L + _W - _PAD_R) / 2:.0f}" y="{_H - 8}" text-anchor="middle" '
        f'class="axis">{_e(x_label)}</text>'
        f'<text x="14" y="{(_PAD_T + _H - _PAD_B) / 2:.0f}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {(_PAD_T + _H - _PAD_B) / 2:.0f})">{_e(y_label)}</text>'
    )
    return parts


def _legend(names: Sequence[str], colors: Sequence[str]) -> str:
    items = []
    x = _PAD_L + 8
    for name, color in zip(names, colors, strict=False):
        items.append(
            f'<rect x="{x}" y="{_PAD_T + 2}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="{_PAD_T + 11}" class="legend">{_e(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return "".join(items)


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    x_label: str,
    y_label: str,
    y_fmt: Any = _fmt,
    colors: Sequence[str] | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Grouped bars: one group per category, one bar per series (``None``: no bar)."""
    names = list(series)
    colors = list(colors or _COLORS)
    values = [v for s in series.values() for v in s if v is not None]
    top = max(values, default=0.0)
    bottom = min(0.0, min(values, default=0.0))
    ticks = _ticks(bottom, top if top > bottom else bottom + 1.0)
    y_lo, y_max = min(ticks[0], bottom), ticks[-1]
    plot_h = _H - _PAD_T - _PAD_B

    def y_of(v: float) -> float:
        return _H - _PAD_B - plot_h * ((v - y_lo) / (y_max - y_lo))

    parts = _frame(x_label, y_label, ticks, y_of, y_fmt)
    n = max(1, len(categories))
    slot = (_W - _PAD_L - _PAD_R) / n
    width = slot * 0.8 / max(1, len(names))
    for i, category in enumerate(categories):
        x0 = _PAD_L + slot * i + slot * 0.1
        for j, name in enumerate(names):
            value = series[name][i]
            if value is None:
                continue
            y = y_of(value)
            zero = y_of(0.0)
            x = x0 + j * width
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{min(y, zero):.1f}" width="{width - 1:.1f}" '
                f'height="{abs(zero - y):.1f}" fill="{colors[j % len(colors)]}">'
                f"<title>{_e(name)} {_e(category)}: {_e(y_fmt(value))}</title></rect>"
            )
            if labels and name in labels:
                parts.append(
                    f'<text x="{x + width / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                    f'class="value">{_e(labels[name][i])}</text>'
                )
        parts.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{_H - _PAD_B + 14}" text-anchor="middle" '
            f'class="tick">{_e(category)}</text>'
        )
    if len(names) > 1:
        parts.append(_legend(names, colors))
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class Marker:
    x: float
    label: str
    color: str = "#111827"


@dataclass
class LineSpec:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    dashed: bool = False
    color: str | None = None


def line_chart(
    lines: Sequence[LineSpec],
    *,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    markers: Sequence[Marker] = (),
    y_fmt: Any = _fmt,
    x_fmt: Any = _fmt,
) -> str:
    xs_all = [x for line in lines for x in line.xs if math.isfinite(x)]
    ys_all = [y for line in lines for y in line.ys if math.isfinite(y)]
    x_lo, x_hi = x_range or (min(xs_all, default=0.0), max(xs_all, default=1.0))
    y_lo, y_hi = y_range or (min(0.0, min(ys_all, default=0.0)), max(ys_all, default=1.0))
    if x_hi <= x_lo:
        x_hi = x_lo + 1
    if y_hi <= y_lo:
        y_hi = y_lo + 1
    y_ticks = _ticks(y_lo, y_hi)
    y_hi = max(y_hi, y_ticks[-1])
    plot_w = _W - _PAD_L - _PAD_R
    plot_h = _H - _PAD_T - _PAD_B

    def x_of(v: float) -> float:
        return _PAD_L + plot_w * (v - x_lo) / (x_hi - x_lo)

    def y_of(v: float) -> float:
        return _H - _PAD_B - plot_h * (v - y_lo) / (y_hi - y_lo)

    parts = _frame(x_label, y_label, y_ticks, y_of, y_fmt)
    for tick in _ticks(x_lo, x_hi):
        parts.append(
            f'<text x="{x_of(tick):.1f}" y="{_H - _PAD_B + 14}" text-anchor="middle" '
            f'class="tick">{_e(x_fmt(tick))}</text>'
        )
    colors = []
    for i, line in enumerate(lines):
        color = line.color or _COLORS[i % len(_COLORS)]
        colors.append(color)
        points = " ".join(
            f"{x_of(x):.1f},{y_of(y):.1f}"
            for x, y in zip(line.xs, line.ys, strict=True)
            if math.isfinite(x) and math.isfinite(y)
        )
        dash = ' stroke-dasharray="5 4"' if line.dashed else ""
        parts.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2"{dash} '
            f'points="{points}"><title>{_e(line.name)}</title></polyline>'
        )
    for k, marker in enumerate(markers):
        if not (x_lo <= marker.x <= x_hi):
            continue
        x = x_of(marker.x)
        parts.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{_PAD_T}" y2="{_H - _PAD_B}" '
            f'stroke="{marker.color}" stroke-dasharray="2 3"/>'
            f'<text x="{x + 4:.1f}" y="{_PAD_T + 28 + 14 * k}" class="legend" '
            f'fill="{marker.color}">{_e(marker.label)}</text>'
        )
    parts.append(_legend([line.name for line in lines], colors))
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;
color:#111827;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
h3{font-size:1rem;margin:.5rem 0}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #e5e7eb;padding:.25rem .6rem;
text-align:right}th{background:#f9fafb}td:first-child,th:first-child{text-align:left}
figure.chart{margin:1.5rem 0}figcaption{color:#4b5563;font-size:.9rem;max-width:40rem}
svg.plot{max-width:100%;height:auto;border:1px solid #f3f4f6}
svg .tick{font-size:11px;fill:#374151}svg .axis{font-size:12px;fill:#111827}
svg .legend{font-size:11px}svg .value{font-size:10px;fill:#374151}
.caveat{background:#fffbeb;border-left:4px solid #f59e0b;padding:.5rem 1rem}
"""


def page(title: str, sections: Sequence[str]) -> str:
    """A whole HTML document; every byte it needs is in it."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        # Belt and braces: even if a later edit slipped in a link, the browser would
        # not fetch it.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _day(text: str) -> str:
    return text[:10]


# --- the backtest report ---------------------------------------------------------------------


def backtest_report(result: Any, predictive: Sequence[Mapping[str, Any]] = ()) -> str:
    """The report of a :class:`scheduler.backtest.BacktestResult`; ``predictive``: each
    predictive model beside its rules model (``scheduler.train.beside_rules``)."""
    doc = result.to_json()
    window = doc["window"]
    runs = result.runs
    first = runs[0] if runs else None
    sections = [
        "<h1>leadsync backtest</h1>",
        "<p>How the scoring model(s) would have ranked the contacts at past dates, judged "
        "against the deals that followed. Each snapshot scores every contact that was "
        "eligible then (created, no deal yet, not converted) from the events known at that "
        "moment only.</p>",
        _table(
            ["data window", ""],
            [
                ["history source", doc["source"]],
                ["first snapshot", _day(window["from"])],
                ["last snapshot", _day(window["to"])],
                ["snapshots kept", len(doc["snapshots"])],
                ["every (days)", _fmt(window["every_days"])],
                ["horizon (days)", _fmt(window["horizon_days"])],
                ["milestone", window["milestone"]],
                ["data ends", window["data_end"]],
            ],
        ),
        _caveats_html(doc),
        "<h2>Summary</h2>",
        _table(
            [
                "model",
                "contact-snapshots",
                "converted",
                "ROC AUC",
                "threshold",
                "precision",
                "recall",
                "leads / week",
                "median days to deal",
            ],
            [
                [
                    run.name,
                    f["pairs"],
                    f"{f['positives']} ({_pct(f['conversion'])})",
                    _num(f["auc"]),
                    _fmt(f["threshold"]),
                    _pct(f["precision_at_threshold"]),
                    _pct(f["recall_at_threshold"]),
                    _num(f["leads_per_week"], 1),
                    _num(f["median_days_to_deal"], 1),
                ]
                for run in runs
                for f in [run.figures]
            ],
        ),
    ]
    charts: list[Chart] = []
    for run in runs:
        charts.append(_distribution_chart(run))
        charts.append(_band_chart(run))
        charts.append(_decile_chart(run))
    if runs:
        charts.append(_roc_chart(runs))
    if first is not None:
        charts.append(_tradeoff_chart(first, doc))
        charts.append(_leads_chart(first, result))
        charts.append(_velocity_chart(first))
    if doc["comparison"] is not None:
        charts.append(_comparison_chart(doc["comparison"], runs))
    sections.append("<h2>Charts</h2>")
    sections.extend(chart.html() for chart in charts)
    sections.append(_advice_html(doc))
    for comparison in predictive:
        sections.extend(_predictive_html(comparison))
    return page("leadsync backtest", sections)


def _predictive_html(c: Mapping[str, Any]) -> list[str]:
    """A predictive model beside its rules model: figures, advice, reliability curve."""
    head = (
        f"<h2>Predictive model {_e(c['model'])} beside {_e(c['base_model'])}</h2>"
        f"<p>On the {c['snapshots']} snapshots after its training labels end "
        f"({_e(_day(c['trained_to']))} plus the horizon): {c['pairs']} contact-snapshots, "
        f"{c['positives']} converted. Earlier snapshots taught the model and are not judged. "
        "The rules score is read as a probability the way a user reads “72 of 100”.</p>"
    )
    gain, ci = c.get("auc_gain"), c.get("auc_gain_ci95")
    if gain is not None:
        ci_text = "n/a" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
        head += (
            f"<p>AUC gain over the rules model: {gain:+.3f} (95% bootstrap interval "
            f"{ci_text}, resamples of contacts with all their snapshots: one contact's "
            "snapshots are not independent examples).</p>"
        )
    if not c["pairs"]:
        return [
            head + "<p>No snapshot is left to judge it on: train it on older data or "
            "backtest a later period.</p>"
        ]
    table = _table(
        [
            "model",
            "ROC AUC",
            "top-decile lift",
            "calibration error",
            "threshold",
            "precision",
            "recall",
            "leads / week",
            "advised (max F1)",
            "precision",
            "recall",
        ],
        [
            [
                m["model"],
                _num(m["auc"]),
                _num(m["lift"], 2),
                _num(m["ece"]),
                _fmt(m["threshold"]),
                _pct(m["precision"]),
                _pct(m["recall"]),
                _num(m["leads_per_week"], 1),
                "n/a" if m["advised_threshold"] is None else _fmt(m["advised_threshold"]),
                _pct(m["advised_precision"]),
                _pct(m["advised_recall"]),
            ]
            for m in c["models"]
        ],
    )
    return [head, table, _reliability_chart(c).html()]


def _reliability_chart(c: Mapping[str, Any]) -> Chart:
    lines = [
        LineSpec(
            f"{m['model']} (calibration error {_num(m['ece'])})",
            [100 * b["predicted"] for b in m["reliability"]],
            [100 * b["observed"] for b in m["reliability"]],
        )
        for m in c["models"]
    ]
    top = 100.0
    lines.append(LineSpec("calibrated", [0, top], [0, top], dashed=True, color="#9ca3af"))
    svg = line_chart(
        lines,
        x_label="predicted conversion (%)",
        y_label="observed conversion (%)",
        x_range=(0, top),
        y_range=(0, top),
    )
    return Chart(
        f"reliability-{c['model']}",
        f"Reliability: {c['model']} and {c['base_model']}",
        svg,
        "Ten equal-frequency bins of contact-snapshots: mean predicted probability (x) "
        "against the observed conversion (y). A calibrated model lies on the diagonal; "
        "the calibration error is the bins' mean distance from it, weighted by size.",
    )


def _caveats_html(doc: Mapping[str, Any]) -> str:
    items = [f"<li>{_e(c)}</li>" for c in doc["caveats"]]
    for d in doc["dropped_snapshots"]:
        items.append(f"<li>snapshot {_e(_day(d['at']))} dropped: {_e(d['reason'])}</li>")
    for note in doc["left_out_fields"]:
        what = []
        if note["applies_to"]:
            what.append(f"{note['applies_to']} applies_to condition(s)")
        if note["rules"]:
            what.append("rule(s) " + ", ".join(note["rules"]))
        items.append(
            f"<li>model {_e(note['model'])}: field <code>{_e(note['field'])}</code> left out "
            f"({_e('; '.join(what))}): {_e(note['reason'])}</li>"
        )
    if not items:
        items.append("<li>none: no snapshot dropped, no field left out</li>")
    return f'<h2>Caveats</h2><div class="caveat"><ul>{"".join(items)}</ul></div>'


def _distribution_chart(run: Any) -> Chart:
    scores = run.pairs.get_column("score").to_numpy()
    bands = run.pairs.get_column("band").to_numpy()
    lo, hi = float(run.model.scale.min), float(run.model.scale.max)
    edges = np.linspace(lo, hi, 11)
    categories = [f"{_fmt(a)}–{_fmt(b)}" for a, b in itertools.pairwise(edges)]
    series: dict[str, list[float | None]] = {}
    for band in ("cold", "warm", "hot"):
        counts, _ = np.histogram(scores[bands == band], bins=edges)
        series[band] = [float(c) for c in counts]
    svg = bar_chart(
        categories,
        series,
        x_label="score (points)",
        y_label="contact-snapshots",
        colors=[_BAND_COLORS[b] for b in series],
    )
    return Chart(
        f"distribution-{run.name}",
        f"Score distribution by band: {run.name}",
        svg,
        "Number of (contact, snapshot) pairs per score range, coloured by band.",
    )


def _band_chart(run: Any) -> Chart:
    bands = run.figures["bands"]
    svg = bar_chart(
        [b["name"] for b in bands],
        {"conversion": [None if b["conversion"] is None else 100 * b["conversion"] for b in bands]},
        x_label="band",
        y_label="conversion (%)",
        colors=[_COLORS[0]],
        labels={
            "conversion": [
                f"lift {_num(b['lift'], 2)} · n={b['count']}" if b["count"] else "n=0"
                for b in bands
            ]
        },
    )
    return Chart(
        f"bands-{run.name}",
        f"Conversion by band: {run.name}",
        svg,
        "Share of contact-snapshots whose contact reached the milestone within the "
        "horizon, per band; lift is that share divided by the overall share.",
    )


def _decile_chart(run: Any) -> Chart:
    deciles = run.figures["deciles"]
    svg = bar_chart(
        [d["name"] for d in deciles],
        {"lift": [d["lift"] for d in deciles]},
        x_label="score decile (1 = highest scores)",
        y_label="lift (× overall conversion)",
        colors=[_COLORS[2]],
        labels={"lift": [_pct(d["conversion"]) if d["count"] else "empty" for d in deciles]},
    )
    return Chart(
        f"deciles-{run.name}",
        f"Lift by score decile: {run.name}",
        svg,
        "Each decile's conversion divided by the overall conversion (above 1: better "
        "than picking at random). Tied scores share a decile, so some may be empty.",
    )


def _roc_chart(runs: Sequence[Any]) -> Chart:
    lines = []
    for run in runs:
        fpr, tpr, _ = ev.roc_curve(
            run.pairs.get_column("score").to_numpy(), run.pairs.get_column("label").to_numpy()
        )
        auc = run.figures["auc"]
        lines.append(LineSpec(f"{run.name} (AUC {_num(auc)})", list(fpr * 100), list(tpr * 100)))
    lines.append(LineSpec("random (AUC 0.5)", [0, 100], [0, 100], dashed=True, color="#9ca3af"))
    svg = line_chart(
        lines,
        x_label="false positive rate (%)",
        y_label="true positive rate (%)",
        x_range=(0, 100),
        y_range=(0, 100),
    )
    return Chart(
        "roc",
        "ROC curve",
        svg,
        "Share of converting (y) and non-converting (x) contact-snapshots at or above "
        "each threshold; the further above the diagonal, the better the ranking.",
    )


def _tradeoff_chart(run: Any, doc: Mapping[str, Any]) -> Chart:
    thresholds, precision, recall = ev.threshold_sweep(
        run.pairs.get_column("score").to_numpy(), run.pairs.get_column("label").to_numpy()
    )
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    xs = list(thresholds)
    markers = [Marker(float(run.figures["threshold"]), "current threshold", "#111827")]
    advice = run.figures["threshold_advice"]
    if advice["f1"]["threshold"] is not None:
        markers.append(Marker(advice["f1"]["threshold"], "advised: max F1", "#9333ea"))
    capacity = advice.get("capacity")
    if capacity and capacity.get("threshold") is not None:
        markers.append(
            Marker(
                capacity["threshold"],
                f"advised: capacity {_fmt(capacity['capacity'])}/week",
                "#ea580c",
            )
        )
    svg = line_chart(
        [
            LineSpec("precision", xs, list(precision * 100)),
            LineSpec("recall", xs, list(recall * 100)),
            LineSpec("F1", xs, list(f1 * 100)),
        ],
        x_label="threshold (score points)",
        y_label="percent",
        x_range=(float(run.model.scale.min), float(run.model.scale.max)),
        y_range=(0, 100),
        markers=markers,
    )
    return Chart(
        "tradeoff",
        f"Threshold trade-off: {run.name}",
        svg,
        "Acting on score ≥ threshold at a snapshot: precision (share acted on that "
        "converted), recall (share of conversions acted on) and F1, with the current and "
        "the advised thresholds marked.",
    )


def _leads_chart(run: Any, result: Any) -> Chart:
    obs = run.observations
    weeks = (result.end - result.start) / timedelta(weeks=1)
    lo = math.ceil(run.model.rearm_below)
    hi = math.floor(run.model.scale.max)
    grid = list(range(lo, hi + 1, max(1, (hi - lo) // 20 or 1)))
    contact = obs.get_column("contact_id").to_numpy()
    scores = obs.get_column("score").to_numpy()
    counted = obs.get_column("day").to_numpy() > 0
    rates = [
        ev.count_crossings(contact, scores, counted, threshold=t, rearm_below=run.model.rearm_below)
        / weeks
        if weeks > 0
        else 0.0
        for t in grid
    ]
    markers = [Marker(float(run.figures["threshold"]), "current threshold")]
    capacity = run.figures["threshold_advice"].get("capacity")
    if capacity and capacity.get("threshold") is not None:
        markers.append(Marker(capacity["threshold"], "advised for capacity", "#ea580c"))
    svg = line_chart(
        [LineSpec("crossings per week", [float(g) for g in grid], rates)],
        x_label="threshold (score points)",
        y_label="leads handed over per week",
        markers=markers,
    )
    return Chart(
        "leads-per-week",
        f"Leads per week by threshold: {run.name}",
        svg,
        "Crossings per week if the threshold had been set there, replaying the sync's "
        "daily runs with rearm_below over the backtest window.",
    )


def _velocity_chart(run: Any) -> Chart:
    days = run.crossings.get_column("days_to_deal").drop_nulls().to_numpy()
    edges = np.arange(0, 98, 7)
    counts, _ = np.histogram(days, bins=edges)
    svg = bar_chart(
        [f"{a}–{b}" for a, b in itertools.pairwise(edges)],
        {"crossings": [float(c) for c in counts]},
        x_label="days from crossing to deal created",
        y_label="crossings",
        colors=[_COLORS[3]],
    )
    median = run.figures["median_days_to_deal"]
    return Chart(
        "velocity",
        f"Velocity from crossing to deal: {run.name}",
        svg,
        f"Crossings followed by a deal within the horizon, by days until the deal was "
        f"created (median {_num(median, 1)} days; {run.figures['crossings']} crossings "
        f"in all, {run.figures['crossings_with_deal']} followed by a deal).",
    )


def _comparison_chart(comparison: Mapping[str, Any], runs: Sequence[Any]) -> Chart:
    names = comparison["models"]
    aucs = [comparison["auc"][n] for n in names]
    svg = bar_chart(
        names,
        {"ROC AUC": aucs},
        x_label="model",
        y_label="ROC AUC (same contact-snapshots)",
        colors=[_COLORS[0]],
        labels={"ROC AUC": [_num(a) for a in aucs]},
    )
    ci = comparison["ci95"]
    ci_text = "n/a" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
    diff = comparison["auc_diff"]
    return Chart(
        "comparison",
        "Models side by side",
        svg,
        f"AUC of {names[1]} minus {names[0]}: {_num(diff)} (95% bootstrap interval "
        f"{ci_text}, {comparison['resamples']} resamples of contacts, seed "
        f"{comparison['seed']}). An interval that excludes 0 means the difference is "
        "unlikely to be luck.",
    )


def _advice_html(doc: Mapping[str, Any]) -> str:
    advice = doc["threshold_advice"]
    if advice is None:
        return ""
    rows = [
        [
            "max F1",
            _fmt(advice["f1"]["threshold"]) if advice["f1"]["threshold"] is not None else "n/a",
            _pct(advice["f1"]["precision"]),
            _pct(advice["f1"]["recall"]),
        ]
    ]
    capacity = advice.get("capacity")
    if capacity:
        rows.append(
            [
                f"capacity {_fmt(capacity['capacity'])} per week",
                "n/a" if capacity["threshold"] is None else _fmt(capacity["threshold"]),
                _pct(capacity["precision"]),
                _pct(capacity["recall"]),
            ]
        )
    return "<h2>Threshold advice</h2>" + _table(
        ["advice", "threshold", "precision", "recall"], rows
    )


# --- the state report --------------------------------------------------------------------------


def state_report(
    *,
    source: str,
    as_of: datetime,
    scores: pl.DataFrame,
    reasons: pl.DataFrame,
    crossings: pl.DataFrame,
    deals: pl.DataFrame,
    converted: set[str],
    window: tuple[datetime, datetime],
) -> str:
    """The current state: band counts, score distribution, crossings and deals per
    week, top rules among converted and not."""
    sections = [
        "<h1>leadsync report</h1>",
        _table(
            ["data", ""],
            [
                ["history source", source],
                ["scores as of", as_of.astimezone(UTC).isoformat()],
                ["weekly figures from", window[0].date().isoformat()],
                ["weekly figures to", window[1].date().isoformat()],
                ["contacts scored", scores.height],
            ],
        ),
    ]
    charts: list[Chart] = []
    for name in scores.get_column("model").unique(maintain_order=True).to_list():
        mine = scores.filter(pl.col("model") == name)
        counts = {b: mine.filter(pl.col("band") == b).height for b in ("hot", "warm", "cold")}
        sections.append(
            f"<h2>Model {_e(name)}</h2>"
            + _table(["band", "contacts"], [[b, c] for b, c in counts.items()])
        )
        values = mine.get_column("score").to_numpy()
        lo = float(values.min()) if len(values) else 0.0
        hi = float(values.max()) if len(values) else 100.0
        edges = np.linspace(min(0.0, lo), max(hi, 1.0), 11)
        series: dict[str, list[float | None]] = {}
        bands = mine.get_column("band").to_numpy()
        for band in ("cold", "warm", "hot"):
            c, _ = np.histogram(values[bands == band], bins=edges)
            series[band] = [float(x) for x in c]
        charts.append(
            Chart(
                f"distribution-{name}",
                f"Score distribution by band: {name}",
                bar_chart(
                    [f"{_fmt(a)}–{_fmt(b)}" for a, b in itertools.pairwise(edges)],
                    series,
                    x_label="score (points)",
                    y_label="contacts",
                    colors=[_BAND_COLORS[b] for b in series],
                ),
                "Contacts per score range today, coloured by band.",
            )
        )
        top = _top_rules(reasons.filter(pl.col("model") == name), converted)
        if top.height:
            categories = top.get_column("rule").to_list()
            charts.append(
                Chart(
                    f"rules-{name}",
                    f"Top rules by contribution: {name}",
                    bar_chart(
                        categories,
                        {
                            "converted": top.get_column("converted").to_list(),
                            "not converted": top.get_column("not_converted").to_list(),
                        },
                        x_label="rule",
                        y_label="mean points per contact",
                    ),
                    "Mean points each rule adds per contact, among contacts with a won "
                    "deal and among the others (the ten rules with the largest absolute "
                    "contribution).",
                )
            )
    weeks = _weekly(crossings, deals, window)
    charts.append(
        Chart(
            "weekly",
            "Crossings and deals per week",
            bar_chart(
                weeks["week"],
                {"crossings": weeks["crossings"], "deals created": weeks["deals"]},
                x_label="week starting (UTC)",
                y_label="count per week",
            ),
            "Threshold crossings (replayed daily with rearm_below) and deals created, per week.",
        )
    )
    sections.append("<h2>Charts</h2>")
    sections.extend(chart.html() for chart in charts)
    return page("leadsync report", sections)


def _top_rules(reasons: pl.DataFrame, converted: set[str]) -> pl.DataFrame:
    if reasons.height == 0:
        return pl.DataFrame()
    conv = pl.Series(sorted(converted), dtype=pl.String)
    flagged = reasons.with_columns(pl.col("contact_id").is_in(conv.implode()).alias("_conv"))
    n_conv = max(1, flagged.filter(pl.col("_conv")).get_column("contact_id").n_unique())
    n_other = max(1, flagged.filter(~pl.col("_conv")).get_column("contact_id").n_unique())
    table = (
        flagged.group_by("rule")
        .agg(
            (pl.col("points").filter(pl.col("_conv")).sum() / n_conv).alias("converted"),
            (pl.col("points").filter(~pl.col("_conv")).sum() / n_other).alias("not_converted"),
        )
        .with_columns((pl.col("converted").abs() + pl.col("not_converted").abs()).alias("_size"))
        .sort(["_size", "rule"], descending=[True, False])
        .head(10)
    )
    return table


def _weekly(
    crossings: pl.DataFrame, deals: pl.DataFrame, window: tuple[datetime, datetime]
) -> dict[str, list[Any]]:
    start, end = window
    n = max(1, math.ceil((end - start) / timedelta(weeks=1)))
    starts = [start + timedelta(weeks=k) for k in range(n)]

    def count(times: pl.Series) -> list[float | None]:
        us = times.drop_nulls().dt.epoch("us").to_numpy()
        offset = (us - int(start.timestamp() * 1_000_000)) // (7 * 86_400_000_000)
        offset = offset[(offset >= 0) & (offset < n)]
        return [float(c) for c in np.bincount(offset.astype(np.int64), minlength=n)]

    return {
        "week": [s.date().isoformat()[5:] for s in starts],
        "crossings": count(crossings.get_column("at")) if crossings.height else [0.0] * n,
        "deals": count(deals.get_column("created_at")) if deals.height else [0.0] * n,
    }
