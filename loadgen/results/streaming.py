"""The report's Streaming section, for a run that made streaming calls: time to first token
and the gaps between tokens over time, tokens per second, their percentile spectra, and each
endpoint's stream numbers. Every number comes from the RunSummary; every line from its
timeseries rows or its histograms.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from loadgen.results.rundata import RunData, table_rows
from loadgen.results.svg import format_number, spectrum_figure, stream_time_charts
from loadgen.summary import LatencyStats, RunSummary, TrafficSummary

PERCENTILES_SHOWN = ("p50", "p90", "p99")
Times = Callable[[TrafficSummary], LatencyStats | None]
TIMES: tuple[tuple[str, Times], ...] = (
    ("TTFT", lambda stats: stats.ttft_ms),
    ("ITL", lambda stats: stats.itl_ms),
    ("TPOT", lambda stats: stats.tpot_ms),
)


def streaming_section(run: RunData) -> str:
    """The section, or nothing for a run that did not stream."""
    if run.stream is None:
        return ""
    spectra = run.stream
    ttft = spectrum_figure(
        spectra.ttft,
        "chart-ttft-spectrum",
        "TTFT percentile spectrum",
        "Time to first token at each percentile, from the intended start time, as the latency "
        "spectrum; the line ends at the slowest stream.",
        "TTFT (ms)",
    )
    itl = spectrum_figure(
        spectra.itl,
        "chart-itl-spectrum",
        "ITL percentile spectrum",
        "Each gap between consecutive token events at its percentile; the line ends at the "
        "longest gap.",
        "ITL (ms)",
    )
    return (
        '<section id="streaming"><h2>Streaming</h2>'
        f"{_stream_table(run.summary)}{stream_time_charts(run)}{ttft}{itl}</section>"
    )


def _stream_table(summary: RunSummary) -> str:
    """A row per endpoint and variant, as the endpoints' table has them."""
    goodput = summary.total.goodput is not None  # the scenario set goodput limits
    head = (
        "".join(f"<th>{name} {key}</th>" for name, _ in TIMES for key in PERCENTILES_SHOWN)
        + "<th>output tokens</th><th>tokens/s</th>"
    )
    head += "<th>goodput</th>" if goodput else ""
    rows = []
    for row in table_rows(summary):
        css = "sub" if row.variant else "total" if row.total else ""
        suffix = f' <span class="muted">· {escape(row.only)}</span>' if row.only else ""
        kind = "variant" if row.variant else "endpoint"
        cells = [
            f'<th scope="row" class="{kind}">{escape(row.name)}{suffix}</th>',
            f"<td>{format_number(row.stats.ok)}</td>",
            *_times(row.stats),
            f"<td>{format_number(row.stats.output_tokens)}</td>",
            f"<td>{format_number(row.stats.output_tokens_per_s)}</td>",
            *([f"<td>{_share(row.stats.goodput)}</td>"] if goodput else []),
            f'<td class="left">{_stream_errors(row.stats)}</td>',
        ]
        rows.append(f'<tr class="{css}">{"".join(cells)}</tr>')
    return (
        '<p class="note">Times in ms, of the streams that ended well: TTFT from the intended '
        "start to the first token, ITL each gap between token events, TPOT per stream the time "
        "after the first token per further token. Tokens per second over the run's duration."
        + (
            " Goodput: the share of all requests that were streams within every goodput limit."
            if goodput
            else ""
        )
        + "</p>"
        "<div class='scroll'><table class='stats'><tr><th class='left'>endpoint / variant</th>"
        f"<th>streams ok</th>{head}<th class='left'>stream errors</th></tr>{''.join(rows)}"
        "</table></div>"
    )


def _times(stats: TrafficSummary) -> list[str]:
    cells = []
    for _, times in TIMES:
        measured = times(stats)
        for key in PERCENTILES_SHOWN:
            value = None if measured is None else getattr(measured, key)
            cells.append(f"<td>{format_number(value, 2)}</td>")
    return cells


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _stream_errors(stats: TrafficSummary) -> str:
    """ModelStreamError's codes: how the streams that broke mid-way said why."""
    codes = stats.stream_error_codes
    if not codes:
        return '<span class="muted">0</span>'
    return "<br>".join(f"{escape(code)} {format_number(n)}" for code, n in codes.items())
