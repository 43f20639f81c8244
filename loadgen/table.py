"""The summary table after a run: the figures a load-test user reads first, in 80 columns
with no cell cut or wrapped (summary.md and the report keep every figure), and the
slowest trace IDs on one short line per endpoint."""

from __future__ import annotations

from typing import NamedTuple

from rich import box
from rich.markup import escape
from rich.table import Table

from loadgen.summary import EndpointSummary, RunSummary, TrafficSummary

TABLE_WIDTH = 80  # a default terminal, and a CI log
SLOWEST_SHOWN = 5  # at most, on the slowest line of an endpoint
SHORT_ID = 6  # a trace ID's last characters on the console; more when two would collide


def ms_text(value: float) -> str:
    """Milliseconds in at most five characters: 1.5, 812, 10000, and 3600s past 99999."""
    if value < 100:
        return f"{value:.1f}"
    if value < 100_000:
        return f"{value:.0f}"
    return f"{value / 1000:.0f}s"


def rate_text(value: float) -> str:
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}" if value < 100_000 else count_text(round(value))


def count_text(value: int) -> str:
    """A count in at most six characters: exact up to 99,999, then 123k, 1.2M, 12M..."""
    if value < 100_000:
        return f"{value:,}"
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        scaled = value / scale
        if scaled < 9.95:
            return f"{scaled:.1f}{unit}"
        if scaled < 999.5:
            return f"{scaled:.0f}{unit}"
    return f"{value / 1e12:.0f}T"


# headers of two lines keep their columns as narrow as the figures under them
COLUMNS = ("requests", "errors", "req/s", "p50", "p99", "max", "svc\np99", "bad\necho", "late")
# which columns get a second space first, when the names leave room: the latencies
SPREAD_FIRST = ("p50", "p99", "max", "svc\np99", "req/s", "errors", "bad\necho", "late", "requests")
LEGEND = (
    "latency ms: p50 p99 max from the intended start (coordinated-omission corrected)",
    "svc p99 from the actual send; bad echo: echoed trace ID mismatched or missing",
)


class Row(NamedTuple):
    name: str
    stats: TrafficSummary


def table_rows(summary: RunSummary) -> list[Row]:
    """An endpoint's row, then its variants'; one row when it has a single variant."""
    rows = []
    for label, stats in summary.endpoints.items():
        if len(stats.variants) == 1:
            (variant,) = stats.variants
            named = label.endswith(f"/{variant}")  # the label names the variant it targets
            rows.append(Row(label if named else f"{label} ({variant})", stats))
            continue
        rows.append(Row(label, stats))
        rows.extend(Row(f"  {variant}", numbers) for variant, numbers in stats.variants.items())
    return rows


def cells(stats: TrafficSummary) -> tuple[str, ...]:
    """One row's figures, in COLUMNS' order, each six characters at most."""
    latency, correlation = stats.latency_ms, stats.correlation
    return (
        count_text(stats.requests),
        count_text(stats.error_count),
        rate_text(stats.throughput_rps),
        ms_text(latency.p50),
        ms_text(latency.p99),
        ms_text(latency.max),
        ms_text(stats.service_time_ms.p99),
        count_text(correlation.mismatched + correlation.missing),
        count_text(stats.late_starts),
    )


def summary_table(summary: RunSummary) -> tuple[Table, list[str]]:
    """The endpoints' table, TABLE_WIDTH columns at most, and the names it shows as #1,
    #2... (as `#1 = name`): those longer than the figures leave room for. No cell is cut
    or wrapped. Columns are one space apart, two where the names leave room."""
    rows = [(row.name, cells(row.stats)) for row in table_rows(summary)]
    total = cells(summary.total) if len(summary.endpoints) > 1 else None
    figures = [numbers for _, numbers in rows] + ([total] if total else [])
    widths = [
        max(len(text) for text in (*header.split("\n"), *column))
        for header, *column in zip(COLUMNS, *figures, strict=True)
    ]
    room = TABLE_WIDTH - sum(widths) - len(COLUMNS)  # the columns one space apart
    keyed: list[str] = []
    names = []
    for name, _ in rows:
        if len(name) > room:
            keyed.append(f"#{len(keyed) + 1} = {name.strip()}")
            name = ("  " if name.startswith("  ") else "") + f"#{len(keyed)}"
        names.append(name)
    # what the names leave goes to a second space before columns, where figures meet first
    spare = room - max(len(name) for name in ["endpoint", *names])
    spread = set(SPREAD_FIRST[: max(spare, 0)])
    table = Table(
        box=box.SIMPLE,  # a rule under the header and above the total; spaces between columns
        show_edge=False,
        padding=0,
        show_footer=total is not None,
    )
    table.add_column("endpoint", footer="total" if total else "", no_wrap=True)
    for index, (header, width) in enumerate(zip(COLUMNS, widths, strict=True)):
        table.add_column(
            header,
            footer=total[index] if total else "",
            justify="right",
            vertical="bottom",
            no_wrap=True,
            min_width=width + 1 if header in spread else width,
        )
    for name, (_, numbers) in zip(names, rows, strict=True):
        table.add_row(escape(name), *numbers)
    return table, keyed


def short_ids(trace_ids: list[str]) -> list[str]:
    """Trace IDs by their last SHORT_ID characters (or more, until no two are alike): the
    run ID they start with is the same for all. Still a substring to search logs for."""
    length = SHORT_ID
    while length < max(map(len, trace_ids), default=0):
        tails = [trace_id[-length:] for trace_id in trace_ids]
        if len(set(tails)) == len(set(trace_ids)):
            break
        length += 1
    return [
        f"...{trace_id[-length:]}" if len(trace_id) > length else trace_id for trace_id in trace_ids
    ]


def slowest_line(label: str, stats: EndpointSummary) -> str | None:
    """`slowest LABEL: ...0002a7 140 ms, ...`: as many of the slowest as fit TABLE_WIDTH
    (one at least)."""
    slowest = stats.slowest[:SLOWEST_SHOWN]
    if not slowest:
        return None
    shown = short_ids([slow.trace_id for slow in slowest])
    line = f"slowest {label}:"
    for index, (slow, short) in enumerate(zip(slowest, shown, strict=True)):
        item = f"{',' if index else ''} {short} {ms_text(slow.latency_ms)} ms"
        if index and len(line) + len(item) > TABLE_WIDTH:
            break
        line += item
    return line
