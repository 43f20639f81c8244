"""report.html: one self-contained page per run, readable offline.

Everything is drawn here, in Python, as inline SVG: no scripts or fonts from anywhere else.
The only script on the page copies a Logs Insights query to the clipboard. Long time series
are bucketed to at most MAX_POINTS points a line, so a long run still makes a small file.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

from hdrh.histogram import HdrHistogram

from loadgen.errors import UsageError
from loadgen.metrics import recorded_buckets
from loadgen.results.writer import TIMESERIES_FIELDS

REPORT_NAME = "report.html"
SLOWEST_SHOWN = 10
MAX_POINTS = 300  # per time-series line; longer runs are bucketed
DASHES = ("6 4", "2 3", "10 3 2 3", "1 6")  # variants: the endpoint's colour, own dash
PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#b91c1c")
CHART_IDS = (
    "chart-latency-over-time",
    "chart-throughput-over-time",
    "chart-percentile-spectrum",
)

# --- the run folder ---------------------------------------------------------------------


class TimeRow(NamedTuple):
    second: int
    requests: int
    errors: int
    mismatched: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class Spectrum:
    name: str
    color: str
    points: list[tuple[float, float]]  # (-log10(1 - fraction), latency ms)
    dash: str = ""


@dataclass(frozen=True, slots=True)
class RunData:
    summary: dict[str, Any]
    timeseries: dict[str, list[TimeRow]]
    spectra: list[Spectrum]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: not found (is this a run folder?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _check_summary(path: Path, summary: dict[str, Any]) -> None:
    endpoints = summary.get("endpoints")
    if not isinstance(endpoints, dict):
        raise UsageError(f"{path}: 'endpoints' is missing or not an object")
    for label, stats in endpoints.items():
        if not isinstance(stats, dict) or not isinstance(stats.get("latency_ms"), dict):
            raise UsageError(f"{path}: endpoints.{label}: 'latency_ms' is missing")
        if not isinstance(stats.get("requests"), int):
            raise UsageError(f"{path}: endpoints.{label}: 'requests' is missing")
    for key in ("thresholds", "comparisons"):
        if summary.get(key) is not None and not isinstance(summary[key], list):
            raise UsageError(f"{path}: '{key}' must be a list")


def _read_timeseries(path: Path) -> dict[str, list[TimeRow]]:
    rows: dict[str, list[TimeRow]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(TIMESERIES_FIELDS) - set(reader.fieldnames or ())
            if missing:
                raise UsageError(f"{path}: missing columns {', '.join(sorted(missing))}")
            for record in reader:
                try:
                    row = TimeRow(
                        int(record["second"]),
                        int(record["requests"]),
                        int(record["errors"]),
                        int(record["mismatched"]),
                        float(record["p50_ms"]),
                        float(record["p99_ms"]),
                    )
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{path}: line {reader.line_num}: {exc}") from None
                rows.setdefault(record["endpoint"], []).append(row)
    except FileNotFoundError:
        raise UsageError(f"{path}: not found (is this a run folder?)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    return {label: sorted(series) for label, series in rows.items()}


def _decode(path: Path, where: str, encoded: Any) -> HdrHistogram:
    try:
        return HdrHistogram.decode(encoded)
    except Exception:  # hdrh raises a zoo of types (binascii, zlib, its own, TypeError)
        raise UsageError(f"{path}: {where}: not a valid HdrHistogram encoding") from None


def load_run(folder: Path) -> RunData:
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory")
    summary_path = folder / "summary.json"
    summary = _read_json(summary_path)
    _check_summary(summary_path, summary)
    timeseries = _read_timeseries(folder / "timeseries.csv")
    histograms_path = folder / "histograms.json"
    histograms = _read_json(histograms_path).get("endpoints")
    if not isinstance(histograms, dict):
        raise UsageError(f"{histograms_path}: 'endpoints' is missing or not an object")
    spectra: list[Spectrum] = []
    for position, label in enumerate(summary["endpoints"]):
        color = PALETTE[position % len(PALETTE)]
        entry = histograms.get(label)
        if not isinstance(entry, dict) or "latency" not in entry:
            raise UsageError(f"{histograms_path}: no latency histogram for {label!r}")
        variants = entry.get("variants") or {}
        name = f"{label} ({next(iter(variants))})" if len(variants) == 1 else label
        histogram = _decode(histograms_path, f"{label} latency", entry["latency"])
        spectra.append(Spectrum(name, color, spectrum_points(histogram)))
        if len(variants) > 1:  # one variant would draw the same line twice
            for number, (variant, pair) in enumerate(variants.items()):
                where = f"{label} variant {variant} latency"
                histogram = _decode(histograms_path, where, (pair or {}).get("latency"))
                points = spectrum_points(histogram)
                dash = DASHES[number % len(DASHES)]
                spectra.append(Spectrum(f"{label} / {variant}", color, points, dash))
    return RunData(summary, timeseries, spectra)


# --- numbers behind the charts ------------------------------------------------------------


def spectrum_points(histogram: HdrHistogram) -> list[tuple[float, float]]:
    """The percentile spectrum as steps: x = -log10(1 - fraction), y = latency in ms.

    The slowest request sits at "1 in N" (x = log10 N). Walks only non-empty buckets.
    """
    total = histogram.get_total_count()
    if not total:
        return []
    cap = math.log10(total) if total > 1 else 1.0

    def nines(seen: int) -> float:
        return cap if seen >= total else min(cap, -math.log10(1.0 - seen / total))

    points: list[tuple[float, float]] = []
    seen = 0
    for index, count in recorded_buckets(histogram):
        value = histogram.get_highest_equivalent_value(histogram.get_value_from_index(index))
        start = nines(seen)
        seen += count
        points += [(start, value / 1000.0), (nines(seen), value / 1000.0)]
    return points


def bucket_rows(rows: Sequence[TimeRow], limit: int = MAX_POINTS) -> tuple[list[TimeRow], int]:
    """At most `limit` rows: p50 request-weighted, p99 the worst, counts per second."""
    if len(rows) <= limit:
        return list(rows), 1
    width = math.ceil((rows[-1].second - rows[0].second + 1) / limit)
    groups: dict[int, list[TimeRow]] = {}
    for row in rows:
        groups.setdefault(row.second // width, []).append(row)
    merged = []
    for key, group in groups.items():
        served = [row for row in group if row.requests]
        weight = sum(row.requests for row in served)
        seconds = len(group)
        merged.append(
            TimeRow(
                key * width,
                round(sum(row.requests for row in group) / seconds),
                round(sum(row.errors for row in group) / seconds),
                round(sum(row.mismatched for row in group) / seconds),
                sum(row.p50_ms * row.requests for row in served) / weight if weight else 0.0,
                max((row.p99_ms for row in served), default=0.0),
            )
        )
    return merged, width


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `high`."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high * 0.999:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _num(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.{digits + 2}g}"
    return f"{value:,.{digits}f}"


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def time_ticks(span: float, most: int = 10) -> list[tuple[float, str]]:
    """Ticks on whole seconds, minutes or hours; labels "5s", or "m:ss", or "h:mm:ss"."""
    step = next((s for s in TIME_STEPS if span / s <= most), TIME_STEPS[-1])
    count = max(1, math.ceil(span / step - 1e-9))
    return [(float(i * step), _clock(i * step, span)) for i in range(count + 1)]


def _clock(seconds: int, span: float) -> str:
    if span <= 120:
        return f"{seconds}s"
    hours, rest = divmod(seconds, 3600)
    clock = f"{rest // 60}:{rest % 60:02d}"
    return f"{hours}:{clock.zfill(5)}" if span >= 3600 else clock


# --- SVG ----------------------------------------------------------------------------------

WIDTH, HEIGHT = 960, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 36, 14, 40
MIN_STEP = 1.5  # px; the spectrum has thousands of steps, the eye sees a few hundred


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    color: str
    segments: list[list[tuple[float, float]]]
    dash: str = ""


def _path(segments: Iterable[list[tuple[float, float]]], sx: Any, sy: Any) -> str:
    """SVG path data; a point within MIN_STEP px of the last one drawn is left out."""
    parts = []
    for segment in segments:
        last_x = last_y = -1e9
        final = len(segment) - 1
        for position, (x, y) in enumerate(segment):
            px, py = sx(x), sy(y)
            near = abs(px - last_x) < MIN_STEP and abs(py - last_y) < MIN_STEP
            if near and (position != final or (px, py) == (last_x, last_y)):
                continue
            parts.append(f"{'L' if position else 'M'}{px:.1f} {py:.1f}".replace(".0 ", " "))
            last_x, last_y = px, py
    return "".join(parts)


def _chart(
    chart_id: str,
    lines: list[Line],
    x_ticks: list[tuple[float, str]],
    y_label: str,
    x_label: str,
) -> str:
    x_high = max(x_ticks[-1][0], 1e-9)
    y_high = max((y for line in lines for seg in line.segments for _, y in seg), default=0.0)
    y_ticks = nice_ticks(y_high * 1.05)
    y_top = y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + plot_w * x / x_high

    def sy(y: float) -> float:
        return TOP + plot_h * (1 - y / y_top)

    out = [
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(y_label)} by {escape(x_label)}">'
    ]
    for tick in y_ticks:
        y = sy(tick)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        label = f"{tick:g}" if tick < 1e5 else f"{tick:,.0f}"
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    for value, label in x_ticks:
        x = sx(value)
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    out.append(
        f'<path class="axis" d="M{LEFT} {TOP}V{TOP + plot_h}H{WIDTH - RIGHT}"/>'
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 4}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="axis-label" transform="translate(14 {TOP + plot_h / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    drawn = False
    for line in lines:
        d = _path(line.segments, sx, sy)
        if not d:
            continue
        drawn = True
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        out.append(
            f'<path class="series" d="{d}" stroke="{line.color}"{dash}>'
            f"<title>{escape(line.name)}</title></path>"
        )
    if not drawn:
        out.append(
            f'<text class="empty" x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}" '
            'text-anchor="middle">no data</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _legend(lines: list[Line]) -> str:
    keys = []
    for line in lines:
        dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
        keys.append(
            f'<span class="key"><svg width="26" height="10" aria-hidden="true">'
            f'<line x1="1" y1="5" x2="25" y2="5" stroke="{line.color}" stroke-width="2.5"{dash}/>'
            f"</svg>{escape(line.name)}</span>"
        )
    return f'<div class="legend">{"".join(keys)}</div>'


def _figure(title: str, note: str, chart: str, lines: list[Line]) -> str:
    return (
        f'<figure><figcaption><h3>{escape(title)}</h3><p class="note">{note}</p></figcaption>'
        f"{chart}{_legend(lines)}</figure>"
    )


def _segments(rows: list[TimeRow], value: Any, skip_idle: bool) -> list[list[tuple[float, float]]]:
    """Lines through `rows`; a second with no requests breaks a latency line."""
    segments: list[list[tuple[float, float]]] = [[]]
    for row in rows:
        if skip_idle and not row.requests:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((row.second, value(row)))
    # a lone point would not show as a path: give it a short width
    return [
        seg if len(seg) > 1 else [seg[0], (seg[0][0] + 0.3, seg[0][1])] for seg in segments if seg
    ]


def _time_charts(run: RunData) -> str:
    summary = run.summary
    labels = list(summary["endpoints"])
    duration = summary.get("duration_s")
    series: dict[str, list[TimeRow]] = {}
    width = 1
    for label in labels:
        rows = run.timeseries.get(label, [])
        partial = isinstance(duration, int | float) and rows and rows[-1].second + 1 > duration
        if partial and len(rows) > 1:
            rows = rows[:-1]  # the last second is partial: its rate would read as a drop
        series[label], width = bucket_rows(rows)
    last = max((rows[-1].second for rows in series.values() if rows), default=1)
    x_ticks = time_ticks(last)
    per = "second" if width == 1 else f"{width} s bucket (p50 weighted by requests, p99 the worst)"
    latency, throughput = [], []
    for position, label in enumerate(labels):
        color = PALETTE[position % len(PALETTE)]
        rows = series[label]
        latency += [
            Line(f"{label} p99", color, _segments(rows, lambda r: r.p99_ms, True)),
            Line(f"{label} p50", color, _segments(rows, lambda r: r.p50_ms, True), dash=DASHES[0]),
        ]
        throughput.append(
            Line(f"{label} requests/s", color, _segments(rows, lambda r: r.requests, False))
        )
        if any(row.errors for row in rows):
            errors = _segments(rows, lambda r: r.errors, False)
            throughput.append(Line(f"{label} errors/s", color, errors, dash=DASHES[0]))
    return _figure(
        "Latency over time",
        f"p50 and p99 of each {escape(per)}, from the intended start time.",
        _chart("chart-latency-over-time", latency, x_ticks, "latency (ms)", "time since start"),
        latency,
    ) + _figure(
        "Throughput over time",
        "Completed requests and errors per second. The last, partial second is left out.",
        _chart("chart-throughput-over-time", throughput, x_ticks, "per second", "time since start"),
        throughput,
    )


def _spectrum_chart(run: RunData) -> str:
    lines = [Line(s.name, s.color, [s.points] if s.points else [], s.dash) for s in run.spectra]
    top = max((x for s in run.spectra for x, _ in s.points), default=2.0)
    nines = max(2, math.ceil(top - 1e-9))
    x_ticks = [(0.0, "0%")] + [
        (float(n), f"{100 - 10 ** (2 - n):.{max(0, n - 2)}f}%") for n in range(1, nines + 1)
    ]
    note = (
        "Latency at each percentile, HdrHistogram style: each step right is one more nine "
        "(90%, 99%, 99.9%, …); the line ends at the slowest request."
    )
    chart = _chart("chart-percentile-spectrum", lines, x_ticks, "latency (ms)", "percentile")
    return _figure("Percentile spectrum", note, chart, lines)


# --- tables -------------------------------------------------------------------------------


def _errors_cell(stats: dict[str, Any]) -> str:
    errors = stats.get("errors") or {}
    count = stats.get("error_count", sum(v for v in errors.values() if isinstance(v, int)))
    requests = stats.get("requests") or 0
    if not count:
        return '<span class="muted">0</span>'
    rate = f" ({100 * count / requests:.2g}%)" if requests else ""
    parts = [f'<b class="bad">{_num(count)}{rate}</b>']
    parts += [f"{escape(str(code))} {_num(n)}" for code, n in errors.items()]
    statuses = stats.get("model_error_status") or {}
    if statuses:
        parts.append(
            "model status " + ", ".join(f"{escape(str(s))}×{_num(n)}" for s, n in statuses.items())
        )
    return "<br>".join(parts)


def _correlation_cell(stats: dict[str, Any]) -> str:
    corr = stats.get("correlation") or {}
    if not any(corr.get(key) for key in ("matched", "mismatched", "missing")):
        return '<span class="muted">–</span>'
    bad = [
        f'<b class="bad">{_num(corr[key])} {key}</b>'
        for key in ("mismatched", "missing")
        if corr.get(key)
    ]
    return "<br>".join([f"{_num(corr.get('matched', 0))} matched", *bad])


def _stats_row(name: str, stats: dict[str, Any], variant: bool, only: str | None = None) -> str:
    latency = stats.get("latency_ms") or {}
    service = stats.get("service_time_ms") or {}
    suffix = f' <span class="muted">· {escape(only)}</span>' if only else ""
    cells = [
        f'<th scope="row" class="{"variant" if variant else "endpoint"}">{escape(name)}{suffix}</th>',
        f"<td>{_num(stats.get('requests'))}</td>",
        f"<td>{_num(stats.get('throughput_rps'))}</td>",
        f'<td class="left">{_errors_cell(stats)}</td>',
        *(f"<td>{_num(latency.get(key), 2)}</td>" for key in ("p50", "p90", "p99", "p999", "max")),
        f"<td>{_num(latency.get('mean'), 2)}</td>",
        f"<td>{_num(service.get('p50'), 2)} / {_num(service.get('p99'), 2)}</td>",
        f'<td class="left">{_correlation_cell(stats)}</td>',
        f"<td>{_num(stats.get('late_starts'))}</td>",
    ]
    return f'<tr class="{"sub" if variant else ""}">{"".join(cells)}</tr>'


def _stats_table(summary: dict[str, Any]) -> str:
    head = (
        "<tr><th class='left'>endpoint / variant</th><th>requests</th><th>req/s</th>"
        '<th class="left">errors</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th>'
        '<th>max</th><th>mean</th><th>service p50 / p99</th><th class="left">correlation</th>'
        "<th>late starts</th></tr>"
    )
    rows = []
    for label, stats in summary["endpoints"].items():
        variants = {k: v for k, v in (stats.get("variants") or {}).items() if isinstance(v, dict)}
        only = next(iter(variants.values()), {}) if len(variants) == 1 else {}
        if only.get("requests") == stats.get("requests"):  # one line would say it all
            rows.append(_stats_row(label, stats, variant=False, only=next(iter(variants))))
            continue
        rows.append(_stats_row(label, stats, variant=False))
        for variant, vstats in variants.items():
            rows.append(_stats_row(f"↳ {variant}", vstats, variant=True))
    total = summary.get("total")
    if isinstance(total, dict) and len(summary["endpoints"]) > 1:
        rows.append(
            _stats_row("all endpoints", total, variant=False).replace("<tr", '<tr class="total"', 1)
        )
    samples = [
        (label, sample)
        for label, stats in summary["endpoints"].items()
        for sample in (stats.get("correlation") or {}).get("samples") or []
        if isinstance(sample, dict)
    ]
    mismatch = ""
    if samples:
        body = "".join(
            f"<tr><td>{escape(label)}</td><td><code>{escape(str(s.get('trace_id', '')))}</code></td>"
            f"<td><code>{escape(str(s.get('sent', '')))}</code></td>"
            f"<td><code>{escape(str(s.get('received', '')))}</code></td></tr>"
            for label, s in samples
        )
        mismatch = (
            "<h3>Correlation failures (samples)</h3><div class='scroll'><table class='plain'>"
            "<tr><th>endpoint</th><th>trace ID</th><th>sent</th><th>received</th></tr>"
            f"{body}</table></div>"
        )
    return (
        '<section id="stats"><h2>Endpoints and variants</h2>'
        '<p class="note">Latency in ms from the intended start time; service time from the actual send.</p>'
        f'<div class="scroll"><table class="stats">{head}{"".join(rows)}</table></div>{mismatch}</section>'
    )


def _verdict(passed: Any) -> str:
    if passed is True:
        return '<span class="badge pass">pass</span>'
    if passed is False:
        return '<span class="badge fail">fail</span>'
    return f'<span class="badge">{escape(str(passed))}</span>'


def _thresholds(summary: dict[str, Any]) -> str:
    entries = [e for e in summary.get("thresholds") or [] if isinstance(e, dict)]
    if not entries:
        body = '<p class="muted">none configured</p>'
    else:
        rows = "".join(
            f"<tr><td class='left'>{escape(str(e.get('name', '')))}</td>"
            f"<td class='left'>{escape(str(e.get('endpoint') or 'all'))}</td>"
            f"<td class='left'>{escape(str(e.get('metric', '')))}</td>"
            f"<td>{_num(e.get('limit'), 3)}</td><td>{_num(e.get('observed'), 3)}</td>"
            f"<td>{_verdict(e.get('passed'))}</td></tr>"
            for e in entries
        )
        body = (
            "<div class='scroll'><table class='plain'><tr><th class='left'>threshold</th>"
            "<th class='left'>endpoint</th><th class='left'>metric</th><th>limit</th>"
            f"<th>observed</th><th>result</th></tr>{rows}</table></div>"
        )
    return f'<section id="thresholds"><h2>Thresholds</h2>{body}</section>'


def _change(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _num(value)
    css = "bad" if value > 0 else "good" if value < 0 else "muted"
    return f'<span class="{css}">{value:+.1f}%</span>'


def _comparisons(summary: dict[str, Any]) -> str:
    entries = [e for e in summary.get("comparisons") or [] if isinstance(e, dict)]
    if not entries:
        return '<section id="comparisons"><h2>Comparisons</h2><p class="muted">none configured</p></section>'
    blocks = []
    for entry in entries:
        rows = "".join(
            f"<tr><td class='left'>{escape(str(r.get('metric', '')))}</td>"
            f"<td>{_num(r.get('base_ms'), 2)}</td><td>{_num(r.get('new_ms'), 2)}</td>"
            f"<td>{_change(r.get('change_pct'))}</td></tr>"
            for r in entry.get("rows") or []
            if isinstance(r, dict)
        )
        failed = entry.get("failed_limits") or []
        failed_html = (
            "<ul class='failed'>"
            + "".join(f"<li>{escape(_plain(f))}</li>" for f in failed)
            + "</ul>"
            if failed
            else ""
        )
        p_value = entry.get("p_value")
        p_html = f" · p = {_num(p_value, 3)}" if p_value is not None else ""
        verdict = escape(str(entry.get("verdict", "")))
        blocks.append(
            f"<div class='comparison'><h3>{escape(str(entry.get('base', '?')))} → "
            f"{escape(str(entry.get('new', '?')))}</h3>"
            f"<p><span class='badge {_verdict_class(entry)}'>{verdict}</span>{p_html}</p>"
            "<table class='plain'><tr><th class='left'>metric</th><th>base (ms)</th>"
            f"<th>new (ms)</th><th>change</th></tr>{rows}</table>{failed_html}</div>"
        )
    return f'<section id="comparisons"><h2>Comparisons</h2>{"".join(blocks)}</section>'


def _verdict_class(entry: dict[str, Any]) -> str:
    if entry.get("failed_limits"):
        return "fail"
    verdict = str(entry.get("verdict", "")).lower()
    return "fail" if any(w in verdict for w in ("slower", "regress", "fail", "worse")) else "pass"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def insights_query(trace_ids: Iterable[str]) -> str:
    """A CloudWatch Logs Insights query that finds these trace IDs in the model's logs."""
    special = set("\\^$.|?*+()[]{}/")
    pattern = "|".join("".join("\\" + c if c in special else c for c in t) for t in trace_ids)
    return f"fields @timestamp, @message | filter @message like /{pattern}/ | sort @timestamp desc"


def _slowest(summary: dict[str, Any]) -> str:
    cards = []
    for position, (label, stats) in enumerate(summary["endpoints"].items()):
        slowest = [s for s in stats.get("slowest") or [] if isinstance(s, dict)]
        if not slowest:
            continue
        rows = "".join(
            f"<tr><td class='left'><code>{escape(str(s.get('trace_id', '')))}</code></td>"
            f"<td>{_num(s.get('latency_ms'), 2)}</td>"
            f"<td class='left'>{escape(str(s.get('variant') or ''))}</td></tr>"
            for s in slowest[:SLOWEST_SHOWN]
        )
        more = (
            f" (the {SLOWEST_SHOWN} slowest are listed; the query finds all {len(slowest)})"
            if len(slowest) > SLOWEST_SHOWN
            else ""
        )
        endpoint_name = label.split("/", 1)[0]
        query = insights_query(str(s.get("trace_id", "")) for s in slowest)
        cards.append(
            f"<div class='card'><h3>{escape(label)}</h3>"
            "<table class='plain'><tr><th class='left'>trace ID</th><th>latency (ms)</th>"
            f"<th class='left'>variant</th></tr>{rows}</table>"
            f"<p class='note'>CloudWatch Logs Insights, log group "
            f"<code>/aws/sagemaker/Endpoints/{escape(endpoint_name)}</code>{more}:</p>"
            f"<pre id='query-{position}'>{escape(query)}</pre>"
            f"<button type='button' data-copy='query-{position}'>Copy query</button></div>"
        )
    body = "".join(cards) or '<p class="muted">no requests recorded</p>'
    return (
        f'<section id="slowest"><h2>Slowest requests</h2><div class="cards">{body}</div></section>'
    )


# --- the page -----------------------------------------------------------------------------


def _header(summary: dict[str, Any]) -> str:
    load = summary.get("load") or {}
    executor = str(load.get("executor", "?"))
    shape = [
        f"{key.replace('_', ' ')} {_num(load[key], 0)}"
        for key in ("rate", "concurrency", "vus", "max_in_flight")
        if load.get(key) is not None
    ]
    started = str(summary.get("started_at", ""))
    try:
        started = datetime.fromisoformat(started.replace("Z", "+00:00")).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
    except ValueError:
        pass
    if summary.get("complete", True):
        status = '<span class="badge pass">complete</span>'
    else:
        reason = summary.get("stop_reason") or "unknown reason"
        status = f'<span class="badge warn">stopped early: {escape(str(reason))}</span>'
    facts = [
        ("run", summary.get("run_id", "?")),
        ("started", started),
        ("duration", f"{_num(summary.get('duration_s'), 1)} s"),
        ("transport", summary.get("transport", "?")),
        ("load", " · ".join([executor, *shape])),
        ("correlation", summary.get("correlation_mode", "?")),
    ]
    facts_html = "".join(f"<div><dt>{k}</dt><dd>{escape(str(v))}</dd></div>" for k, v in facts)
    total = summary.get("total") if isinstance(summary.get("total"), dict) else {}
    latency = total.get("latency_ms") or {}
    requests = total.get("requests") or 0
    errors = total.get("error_count") or 0
    corr = total.get("correlation") or {}
    tiles = [
        ("requests", _num(requests)),
        ("achieved rate", f"{_num(summary.get('achieved_rate_rps'))}/s"),
        ("errors", f"{100 * errors / requests:.2f}%" if requests else "–"),
        ("p50", f"{_num(latency.get('p50'), 2)} ms"),
        ("p99", f"{_num(latency.get('p99'), 2)} ms"),
        ("max", f"{_num(latency.get('max'), 2)} ms"),
        ("mismatched", _num(corr.get("mismatched", 0) + corr.get("missing", 0))),
    ]
    tiles_html = "".join(f"<div class='tile'><span>{k}</span><b>{v}</b></div>" for k, v in tiles)
    warnings = []
    if summary.get("client_failure"):
        warnings.append(f"client failure: {escape(str(summary['client_failure']))}")
    if summary.get("interrupted_requests"):
        warnings.append(
            f"{_num(summary['interrupted_requests'])} requests were still in flight at the end"
        )
    if total.get("out_of_range"):
        warnings.append(f"{_num(total['out_of_range'])} latencies above one hour were not recorded")
    warn_html = "".join(f"<p class='warning'>{w}</p>" for w in warnings)
    return (
        f"<header><h1>{escape(str(summary.get('scenario', 'run')))} {status}</h1>"
        f"<dl class='facts'>{facts_html}</dl><div class='tiles'>{tiles_html}</div>{warn_html}</header>"
    )


STYLE = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--bad:#b91c1c;--good:#047857}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:24px;margin:0 0 12px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
h2{font-size:18px;margin:36px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:0 0 4px}
.facts{display:flex;flex-wrap:wrap;gap:6px 28px;margin:0 0 16px}
.facts dt{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.facts dd{margin:0;font-weight:500}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile span{display:block;font-size:12px;color:var(--muted)}
.tile b{font-size:20px;font-variant-numeric:tabular-nums}
figure{margin:20px 0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.note{margin:0 0 8px;color:var(--muted);font-size:13px}
svg.chart{display:block;width:100%;height:auto}
.chart .grid{stroke:#eef0f3}
.chart .axis{stroke:#9ca3af;fill:none}
.chart .tick{fill:var(--muted);font-size:12px}
.chart .axis-label{fill:var(--ink);font-size:12px}
.chart .series{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.chart .series:hover{stroke-width:3.5}
.chart .empty{fill:var(--muted);font-size:16px}
.legend{display:flex;flex-wrap:wrap;gap:4px 18px;margin-top:6px;font-size:13px}
.key{display:inline-flex;align-items:center;gap:6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;background:var(--card);font-variant-numeric:tabular-nums}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top;white-space:nowrap}
th{font-size:12px;color:var(--muted);font-weight:600}
.left{text-align:left}
table.stats{width:100%}
table th{white-space:normal}
.stats{font-size:13px}.stats th,.stats td{padding:6px 6px}
.stats th[scope=row]{text-align:left;color:var(--ink);font-size:14px;white-space:normal;min-width:120px;max-width:240px;overflow-wrap:anywhere}
.stats tr.sub th,.stats tr.sub td{color:#4b5563;font-size:12.5px;background:#fbfcfd}
.stats th.variant{padding-left:24px;font-weight:500}
.stats tr.total th,.stats tr.total td{border-top:2px solid var(--line);font-weight:600}
.bad{color:var(--bad)}.good{color:var(--good)}.muted{color:var(--muted)}
.badge{font-size:12px;font-weight:600;padding:2px 8px;border-radius:999px;background:#e5e7eb;color:var(--ink)}
.badge.pass{background:#d1fae5;color:#065f46}.badge.fail{background:#fee2e2;color:#991b1b}
.badge.warn{background:#fef3c7;color:#92400e}
.warning{background:#fef3c7;border:1px solid #fcd34d;border-radius:6px;padding:8px 12px;margin:12px 0 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:16px}
.card,.comparison{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;min-width:0}
.comparison{margin-bottom:16px}
.card table{width:100%}
.card td code{overflow-wrap:anywhere;white-space:normal}
h1,h3,.legend,.facts dd{overflow-wrap:anywhere}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f5f9;border-radius:6px;padding:10px;white-space:pre-wrap;word-break:break-all;margin:0 0 8px}
button{font:inherit;font-size:13px;padding:4px 12px;border:1px solid #cbd5e1;border-radius:6px;background:#fff;cursor:pointer}
button:hover{background:#f1f5f9}
.failed{color:var(--bad);margin:8px 0 0}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media (max-width:640px){.cards{grid-template-columns:1fr}main{padding:16px 10px}}
"""

SCRIPT = """
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var text = document.getElementById(button.dataset.copy).textContent;
    var done = function () { button.textContent = "Copied"; };
    var select = function () {
      var range = document.createRange();
      range.selectNodeContents(document.getElementById(button.dataset.copy));
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    };
    if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, select); }
    else { select(); }
  });
});
"""


def render_report(folder: Path) -> str:
    """The report of the run in `folder`, as one self-contained HTML page."""
    run = load_run(Path(folder))
    summary = run.summary
    title = f"{summary.get('scenario', 'run')} {summary.get('run_id', '')} · loadgen report"
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>",
            _header(summary),
            '<section id="charts"><h2>Charts</h2>',
            _time_charts(run),
            _spectrum_chart(run),
            "</section>",
            _stats_table(summary),
            _thresholds(summary),
            _comparisons(summary),
            _slowest(summary),
            "<footer>Made by loadgen from summary.json, timeseries.csv and histograms.json "
            "in this folder.</footer>",
            f"</main><script>{SCRIPT}</script></body></html>\n",
        ]
    )


def write_report(folder: Path) -> Path:
    """Write folder/report.html atomically; returns its path."""
    folder = Path(folder)
    text = render_report(folder)
    path = folder / REPORT_NAME
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write: {exc}") from None
    return path
