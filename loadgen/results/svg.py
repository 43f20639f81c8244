"""Inline SVG charts for the report, and the numbers behind them (no third-party scripts)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from loadgen.results.rundata import DASHES, PALETTE, RunData, Spectrum
from loadgen.results.writer import TimeRow
from loadgen.summary import CapacitySummary

MAX_POINTS = 300  # per time-series line; longer runs are bucketed
CHART_IDS = (
    "chart-latency-over-time",
    "chart-throughput-over-time",
    "chart-percentile-spectrum",
)
STREAM_CHART_IDS = (  # a streaming run's, in its own section
    "chart-ttft-over-time",
    "chart-itl-over-time",
    "chart-tokens-over-time",
    "chart-ttft-spectrum",
    "chart-itl-spectrum",
)


# --- numbers behind the charts ------------------------------------------------------------


def bucket_rows(rows: Sequence[TimeRow], limit: int = MAX_POINTS) -> tuple[list[TimeRow], int]:
    """At most `limit` rows: p50 request-weighted, p99 the worst, counts per second; the
    streams' p50s weighted by the requests of the seconds in which streams ended."""
    if len(rows) <= limit:
        return list(rows), 1
    width = math.ceil((rows[-1].second - rows[0].second + 1) / limit)
    groups: dict[int, list[TimeRow]] = {}
    for row in rows:
        groups.setdefault(row.second // width, []).append(row)
    merged = []
    for key, group in groups.items():
        served = [row for row in group if row.requests]
        streamed = [row for row in group if streams_ended(row)]
        seconds = len(group)
        merged.append(
            TimeRow(
                key * width,
                round(sum(row.requests for row in group) / seconds),
                round(sum(row.errors for row in group) / seconds),
                round(sum(row.mismatched for row in group) / seconds),
                _weighted(served, lambda row: row.p50_ms),
                max((row.p99_ms for row in served), default=0.0),
                round(sum(row.output_tokens for row in group) / seconds),
                _weighted(streamed, lambda row: row.ttft_p50_ms),
                max((row.ttft_p99_ms for row in streamed), default=0.0),
                _weighted(streamed, lambda row: row.itl_p50_ms),
                max((row.itl_p99_ms for row in streamed), default=0.0),
            )
        )
    return merged, width


def streams_ended(row: TimeRow) -> bool:
    """Some stream ended well in this second (a TTFT of 0.000 ms does not happen)."""
    return row.ttft_p99_ms > 0


def _weighted(rows: list[TimeRow], value: Callable[[TimeRow], float]) -> float:
    weight = sum(row.requests for row in rows)
    return sum(value(row) * row.requests for row in rows) / weight if weight else 0.0


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


def format_number(value: Any, digits: int = 1) -> str:
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


def _segments(
    rows: list[TimeRow], value: Any, counts: Callable[[TimeRow], bool] | None
) -> list[list[tuple[float, float]]]:
    """Lines through `rows`; a second that `counts` does not count (no requests, for a
    latency line) breaks the line. Without `counts` every second is a point."""
    segments: list[list[tuple[float, float]]] = [[]]
    for row in rows:
        if counts is not None and not counts(row):
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((row.second, value(row)))
    # a lone point would not show as a path: give it a short width
    return [
        seg if len(seg) > 1 else [seg[0], (seg[0][0] + 0.3, seg[0][1])] for seg in segments if seg
    ]


def _has_requests(row: TimeRow) -> bool:
    return row.requests > 0


@dataclass(frozen=True, slots=True)
class Series:
    """Each endpoint's rows as the time charts draw them, and their common x axis."""

    rows: dict[str, list[TimeRow]]  # by label, in the summary's order
    width: int  # seconds per point
    x_ticks: list[tuple[float, str]]

    @classmethod
    def of(cls, run: RunData) -> Series:
        duration = run.summary.duration_s
        series: dict[str, list[TimeRow]] = {}
        width = 1
        for label in run.summary.endpoints:
            rows = run.timeseries.get(label, [])
            partial = rows and rows[-1].second + 1 > duration
            if partial and len(rows) > 1:
                rows = rows[:-1]  # the last second is partial: its rate would read as a drop
            series[label], width = bucket_rows(rows)
        last = max((rows[-1].second for rows in series.values() if rows), default=1)
        return cls(series, width, time_ticks(last))

    def per(self, weighted: str) -> str:
        """What one point is: a second, or a bucket of seconds and how it was made."""
        if self.width == 1:
            return "second"
        return f"{self.width} s bucket (p50 weighted by {weighted}, p99 the worst)"


def time_charts(run: RunData) -> str:
    series = Series.of(run)
    x_ticks = series.x_ticks
    per = series.per("requests")
    latency, throughput = [], []
    for position, (label, rows) in enumerate(series.rows.items()):
        color = PALETTE[position % len(PALETTE)]
        latency += [
            Line(f"{label} p99", color, _segments(rows, lambda r: r.p99_ms, _has_requests)),
            Line(
                f"{label} p50",
                color,
                _segments(rows, lambda r: r.p50_ms, _has_requests),
                dash=DASHES[0],
            ),
        ]
        throughput.append(
            Line(f"{label} requests/s", color, _segments(rows, lambda r: r.requests, None))
        )
        if any(row.errors for row in rows):
            errors = _segments(rows, lambda r: r.errors, None)
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


def stream_time_charts(run: RunData) -> str:
    """A streaming run's TTFT and gaps between tokens (p50, p99) and tokens per second."""
    series = Series.of(run)
    x_ticks = series.x_ticks
    ttft: list[Line] = []
    itl: list[Line] = []
    tokens: list[Line] = []
    for position, (label, rows) in enumerate(series.rows.items()):
        color = PALETTE[position % len(PALETTE)]
        for lines, p99, p50 in (
            (ttft, lambda r: r.ttft_p99_ms, lambda r: r.ttft_p50_ms),
            (itl, lambda r: r.itl_p99_ms, lambda r: r.itl_p50_ms),
        ):
            lines += [
                Line(f"{label} p99", color, _segments(rows, p99, streams_ended)),
                Line(f"{label} p50", color, _segments(rows, p50, streams_ended), dash=DASHES[0]),
            ]
        tokens.append(
            Line(f"{label} tokens/s", color, _segments(rows, lambda r: r.output_tokens, None))
        )
    per = escape(series.per("requests"))
    return "".join(
        [
            _figure(
                "Time to first token over time",
                f"p50 and p99 of each {per}, from the intended start time, of the streams "
                "that ended well in it.",
                _chart("chart-ttft-over-time", ttft, x_ticks, "TTFT (ms)", "time since start"),
                ttft,
            ),
            _figure(
                "Inter-token latency over time",
                f"p50 and p99 of the gaps between token events, each {per}, of the streams "
                "that ended well in it.",
                _chart("chart-itl-over-time", itl, x_ticks, "ITL (ms)", "time since start"),
                itl,
            ),
            _figure(
                "Output tokens over time",
                "Tokens of the streams that ended well in each second. The last, partial "
                "second is left out.",
                _chart(
                    "chart-tokens-over-time",
                    tokens,
                    x_ticks,
                    "tokens per second",
                    "time since start",
                ),
                tokens,
            ),
        ]
    )


def spectrum_chart(run: RunData) -> str:
    note = (
        "Latency at each percentile, HdrHistogram style: each step right is one more nine "
        "(90%, 99%, 99.9%, …); the line ends at the slowest request."
    )
    return spectrum_figure(
        run.spectra, "chart-percentile-spectrum", "Percentile spectrum", note, "latency (ms)"
    )


def spectrum_figure(
    spectra: list[Spectrum], chart_id: str, title: str, note: str, y_label: str
) -> str:
    """A percentile spectrum (x: -log10(1 - fraction), "one more nine" a step) of each line."""
    lines = [Line(s.name, s.color, [s.points] if s.points else [], s.dash) for s in spectra]
    top = max((x for s in spectra for x, _ in s.points), default=2.0)
    nines = max(2, math.ceil(top - 1e-9))
    x_ticks = [(0.0, "0%")] + [
        (float(n), f"{100 - 10 ** (2 - n):.{max(0, n - 2)}f}%") for n in range(1, nines + 1)
    ]
    chart = _chart(chart_id, lines, x_ticks, y_label, "percentile")
    return _figure(title, note, chart, lines)


CAPACITY_CHART_ID = "chart-capacity"
CAPACITY_CLIP = 3.0  # latencies above this many times the SLO's largest limit are drawn at it


def capacity_chart(capacity: CapacitySummary) -> str:
    """A capacity search's p50 and p99 against offered rate, with the SLO's latency limits
    (dashed) and the capacity found (and the knee) as vertical lines."""
    steps = sorted(capacity.steps, key=lambda step: step.rate)
    limits = capacity.slo.latency_ms
    cap = CAPACITY_CLIP * max(limits.values(), default=0.0)
    highest = max((step.p99_ms for step in steps), default=0.0)
    clipped = bool(cap) and highest > cap
    top = cap if clipped else max([highest, *limits.values()])

    def curve(value: Any) -> list[list[tuple[float, float]]]:
        points = [(step.rate, min(value(step), top)) for step in steps]
        return [points] if len(points) > 1 else [points + [(points[0][0] * 1.01, points[0][1])]]

    lines = [
        Line("p99", PALETTE[0], curve(lambda step: step.p99_ms)),
        Line("p50", PALETTE[0], curve(lambda step: step.p50_ms), dash=DASHES[0]),
    ]
    x_high = max((step.rate for step in steps), default=1.0) * 1.05
    for number, (key, limit) in enumerate(limits.items()):
        color = PALETTE[(3 + number) % len(PALETTE)]
        lines.append(
            Line(f"SLO {key} {limit:g} ms", color, [[(0.0, limit), (x_high, limit)]], "2 3")
        )
    found = capacity.max_rate_rps
    if found is not None:
        lines.append(Line(f"capacity {found:g} req/s", PALETTE[2], [[(found, 0.0), (found, top)]]))
    knee = capacity.knee_rate_rps
    if knee is not None:
        lines.append(Line(f"knee {knee:g} req/s", "#6b7280", [[(knee, 0.0), (knee, top)]], "6 4"))
    x_ticks = [(tick, f"{tick:g}") for tick in nice_ticks(x_high)]
    note = "Each step's latency from the intended start, against the rate it offered. " + (
        f"Latencies above {top:g} ms are drawn at {top:g} ms." if clipped else ""
    )
    chart = _chart(CAPACITY_CHART_ID, lines, x_ticks, "latency (ms)", "offered rate (req/s)")
    return _figure("Latency against offered rate", escape(note), chart, lines)
