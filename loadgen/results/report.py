"""report.html: one self-contained page per run, readable offline.

Everything is drawn here, in Python, as inline SVG: no scripts or fonts from anywhere else.
The only script on the page copies a Logs Insights query to the clipboard. Long time series
are bucketed to at most MAX_POINTS points a line, so a long run still makes a small file.
Every number and every pass/fail on the page comes from the run's RunSummary.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from loadgen.capacity_text import capacity_lines
from loadgen.results.files import write_text_atomic
from loadgen.results.rundata import RunData, load_run, table_rows
from loadgen.results.streaming import streaming_section
from loadgen.results.svg import capacity_chart, format_number, spectrum_chart, time_charts
from loadgen.summary import ComparisonResult, RunSummary, TrafficSummary

REPORT_NAME = "report.html"
SLOWEST_SHOWN = 10

# --- the verdict and the header -----------------------------------------------------------


def _banner(summary: RunSummary) -> str:
    """PASSED or FAILED with every reason: the first thing on the page."""
    verdict = summary.verdict
    if verdict.passed:
        return '<div id="verdict" class="verdict pass"><b>PASSED</b></div>'
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in verdict.reasons)
    return (
        f'<div id="verdict" class="verdict fail"><b>FAILED</b>'
        f" (exit code {verdict.exit_code})<ul>{reasons}</ul></div>"
    )


def _header(summary: RunSummary) -> str:
    load = summary.load_config
    shape = [
        f"{key.replace('_', ' ')} {format_number(getattr(load, key), 0)}"
        for key in ("rate", "concurrency", "max_in_flight")
        if getattr(load, key, None) is not None
    ]
    if summary.complete:
        status = '<span class="badge pass">complete</span>'
    else:
        status = f'<span class="badge warn">stopped early: {escape(summary.stop_text)}</span>'
    facts = [
        ("run", summary.run_id),
        ("started", summary.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("duration", f"{format_number(summary.duration_s, 1)} s"),
        ("transport", summary.transport),
        ("engines", summary.placement),
        ("load", " · ".join([load.executor, *shape])),
        ("correlation", summary.correlation_mode),
    ]
    facts_html = "".join(f"<div><dt>{k}</dt><dd>{escape(str(v))}</dd></div>" for k, v in facts)
    total = summary.total
    latency = total.latency_ms
    requests = total.requests
    corr = total.correlation
    target = ""
    if summary.target_rate_rps is not None:
        target = f" of {format_number(summary.target_rate_rps)}"
    tiles = [
        ("requests", format_number(requests)),
        ("achieved rate", f"{format_number(summary.achieved_rate_rps)}/s{target}"),
        ("errors", f"{100 * total.error_count / requests:.2f}%" if requests else "–"),
        ("p50", f"{format_number(latency.p50, 2)} ms"),
        ("p99", f"{format_number(latency.p99, 2)} ms"),
        ("max", f"{format_number(latency.max, 2)} ms"),
        ("mismatched", format_number(corr.mismatched + corr.missing)),
    ]
    tiles_html = "".join(f"<div class='tile'><span>{k}</span><b>{v}</b></div>" for k, v in tiles)
    warnings = [escape(warning.message) for warning in summary.warnings]
    if summary.client_failure:
        warnings.append(f"client failure: {escape(summary.client_failure)}")
    if summary.interrupted_requests:
        warnings.append(
            f"{format_number(summary.interrupted_requests)} requests were still in flight at the end"
        )
    if total.out_of_range:
        warnings.append(
            f"{format_number(total.out_of_range)} latencies above one hour were not recorded"
        )
    warn_html = "".join(f"<p class='warning'>{w}</p>" for w in warnings)
    return (
        f"<header>{_banner(summary)}<h1>{escape(summary.scenario)} {status}</h1>"
        f"<dl class='facts'>{facts_html}</dl><div class='tiles'>{tiles_html}</div>{warn_html}</header>"
    )


# --- tables -------------------------------------------------------------------------------


def _errors_cell(stats: TrafficSummary) -> str:
    count = stats.error_count
    if not count:
        return '<span class="muted">0</span>'
    rate = f" ({100 * count / stats.requests:.2g}%)" if stats.requests else ""
    parts = [f'<b class="bad">{format_number(count)}{rate}</b>']
    parts += [f"{escape(code)} {format_number(n)}" for code, n in stats.errors.items()]
    if stats.model_error_status:
        parts.append(
            "model status "
            + ", ".join(
                f"{escape(s)}×{format_number(n)}" for s, n in stats.model_error_status.items()
            )
        )
    return "<br>".join(parts)


def _correlation_cell(stats: TrafficSummary) -> str:
    corr = stats.correlation
    if not (corr.matched or corr.mismatched or corr.missing):
        return '<span class="muted">–</span>'
    bad = [
        f'<b class="bad">{format_number(count)} {key}</b>'
        for key, count in (("mismatched", corr.mismatched), ("missing", corr.missing))
        if count
    ]
    return "<br>".join([f"{format_number(corr.matched)} matched", *bad])


def _stats_row(name: str, stats: TrafficSummary, variant: bool, only: str | None = None) -> str:
    latency = stats.latency_ms
    service = stats.service_time_ms
    suffix = f' <span class="muted">· {escape(only)}</span>' if only else ""
    cells = [
        f'<th scope="row" class="{"variant" if variant else "endpoint"}">{escape(name)}{suffix}</th>',
        f"<td>{format_number(stats.requests)}</td>",
        f"<td>{format_number(stats.throughput_rps)}</td>",
        f'<td class="left">{_errors_cell(stats)}</td>',
        *(
            f"<td>{format_number(value, 2)}</td>"
            for value in (latency.p50, latency.p90, latency.p99, latency.p999, latency.max)
        ),
        f"<td>{format_number(latency.mean, 2)}</td>",
        f"<td>{format_number(service.p50, 2)} / {format_number(service.p99, 2)}</td>",
        f'<td class="left">{_correlation_cell(stats)}</td>',
        f"<td>{format_number(stats.late_starts)}</td>",
    ]
    return f'<tr class="{"sub" if variant else ""}">{"".join(cells)}</tr>'


def _stats_table(summary: RunSummary) -> str:
    head = (
        "<tr><th class='left'>endpoint / variant</th><th>requests</th><th>req/s</th>"
        '<th class="left">errors</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th>'
        '<th>max</th><th>mean</th><th>service p50 / p99</th><th class="left">correlation</th>'
        "<th>late starts</th></tr>"
    )
    rows = []
    for row in table_rows(summary):
        html = _stats_row(row.name, row.stats, row.variant, row.only)
        rows.append(html.replace("<tr", '<tr class="total"', 1) if row.total else html)
    samples = [
        (label, sample)
        for label, stats in summary.endpoints.items()
        for sample in stats.correlation.samples
    ]
    mismatch = ""
    if samples:
        body = "".join(
            f"<tr><td>{escape(label)}</td><td><code>{escape(s.trace_id)}</code></td>"
            f"<td><code>{escape(s.sent)}</code></td>"
            f"<td><code>{escape(s.received)}</code></td></tr>"
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


def _badge(passed: bool, text: str) -> str:
    return f'<span class="badge {"pass" if passed else "fail"}">{escape(text)}</span>'


def _thresholds(summary: RunSummary) -> str:
    if not summary.thresholds:
        body = '<p class="muted">none configured</p>'
    else:
        rows = "".join(
            f"<tr><td class='left'>{escape(t.name)}</td>"
            f"<td class='left'>{escape(t.endpoint)}</td>"
            f"<td class='left'>{escape(t.metric)}</td>"
            f"<td>{escape(t.comparator)} {format_number(t.limit, 3)}</td>"
            f"<td>{format_number(t.observed, 3)}</td>"
            f"<td>{_badge(t.passed, 'pass' if t.passed else 'fail')}</td></tr>"
            for t in summary.thresholds
        )
        body = (
            "<div class='scroll'><table class='plain'><tr><th class='left'>threshold</th>"
            "<th class='left'>endpoint</th><th class='left'>metric</th><th>limit</th>"
            f"<th>observed</th><th>result</th></tr>{rows}</table></div>"
        )
    return f'<section id="thresholds"><h2>Thresholds</h2>{body}</section>'


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


def _change(value: float) -> str:
    css = "bad" if value > 0 else "good" if value < 0 else "muted"
    return f'<span class="{css}">{_percent(value)}</span>'


def _comparison(comparison: ComparisonResult) -> str:
    level = f"{comparison.confidence:.0%} CI"
    rows = "".join(
        f"<tr><td class='left'>{escape(metric)}</td>"
        f"<td>{format_number(row.base_ms, 2)}</td><td>{format_number(row.new_ms, 2)}</td>"
        f"<td>{_change(row.change)}</td>"
        f"<td>{'–' if row.ci_low is None else f'{_percent(row.ci_low)} .. {_percent(row.ci_high)}'}</td></tr>"
        for metric, row in comparison.metrics.items()
    )
    failed = [limit.failure() for limit in comparison.limits if limit.failed]
    failed_html = (
        "<ul class='failed'>" + "".join(f"<li>{escape(text)}</li>" for text in failed) + "</ul>"
        if failed
        else ""
    )
    limits = ", ".join(f"{limit.metric} ≤ +{limit.max_increase:.0%}" for limit in comparison.limits)
    test = comparison.mann_whitney
    if comparison.missing:
        return (
            f"<div class='comparison'><h3>{escape(comparison.base)} → {escape(comparison.new)}</h3>"
            f"<p>{_badge(comparison.passed, str(comparison.outcome))}"
            f" · on {escape(comparison.metric.label)}{escape(comparison.why_missing())}"
            f" · limits: {escape(limits) if limits else 'none'}"
            f" · requests {format_number(comparison.requests.base)} / "
            f"{format_number(comparison.requests.new)}</p>{failed_html}</div>"
        )
    return (
        f"<div class='comparison'><h3>{escape(comparison.base)} → {escape(comparison.new)}</h3>"
        f"<p>{_badge(comparison.passed, str(comparison.outcome))}"
        f" · on {escape(comparison.metric.label)}"
        f" · Mann-Whitney p = {test.p_value:.3g} (alpha {comparison.alpha:g})"
        f" · limits: {escape(limits) if limits else 'none'}"
        f" · requests {format_number(comparison.requests.base)} / "
        f"{format_number(comparison.requests.new)}</p>"
        f"<table class='plain'><tr><th class='left'>{escape(comparison.metric.label)}</th>"
        "<th>base (ms)</th>"
        f"<th>new (ms)</th><th>change</th><th>{level}</th></tr>{rows}</table>{failed_html}</div>"
    )


def _comparisons(summary: RunSummary) -> str:
    blocks = "".join(_comparison(comparison) for comparison in summary.comparisons)
    body = blocks or '<p class="muted">none configured</p>'
    return f'<section id="comparisons"><h2>Comparisons</h2>{body}</section>'


def _slowest(summary: RunSummary) -> str:
    cards = []
    for position, (label, stats) in enumerate(summary.endpoints.items()):
        if not stats.slowest:
            continue
        rows = "".join(
            f"<tr><td class='left'><code>{escape(s.trace_id)}</code></td>"
            f"<td>{format_number(s.latency_ms, 2)}</td>"
            f"<td class='left'>{escape(s.variant or '')}</td></tr>"
            for s in stats.slowest[:SLOWEST_SHOWN]
        )
        more = (
            f" (the {SLOWEST_SHOWN} slowest are listed; the query finds all {len(stats.slowest)})"
            if len(stats.slowest) > SLOWEST_SHOWN
            else ""
        )
        query = stats.slowest_query
        cards.append(
            f"<div class='card'><h3>{escape(label)}</h3>"
            "<table class='plain'><tr><th class='left'>trace ID</th><th>latency (ms)</th>"
            f"<th class='left'>variant</th></tr>{rows}</table>"
            f"<p class='note'>CloudWatch Logs Insights, log group "
            f"<code>{escape(query.log_group)}</code>{more}:</p>"
            f"<pre id='query-{position}'>{escape(query.query)}</pre>"
            f"<button type='button' data-copy='query-{position}'>Copy query</button></div>"
        )
    body = "".join(cards) or '<p class="muted">no requests recorded</p>'
    return (
        f'<section id="slowest"><h2>Slowest requests</h2><div class="cards">{body}</div></section>'
    )


def _capacity(summary: RunSummary) -> str:
    """A capacity search: what it found, latency against offered rate, and every step in
    the order run (each step's histograms are in histograms.json under its label)."""
    capacity = summary.capacity
    if capacity is None:
        return ""
    findings = "".join(f"<p>{escape(line)}</p>" for line in capacity_lines(capacity))
    rows = "".join(
        f"<tr><td class='left'><code>{escape(step.label)}</code></td>"
        f"<td>{format_number(step.rate)}</td><td>{format_number(step.achieved_rps)}</td>"
        f"<td>{format_number(step.requests)}</td>"
        f"<td>{format_number(step.p50_ms, 2)}</td><td>{format_number(step.p99_ms, 2)}</td>"
        f"<td>{100 * step.error_rate:.2f}%</td>"
        f"<td>{_badge(step.good, 'good' if step.good else 'bad')}</td>"
        f"<td class='left'>{escape('; '.join(step.failures))}"
        f"{'' if step.settled else ' (the queue had not drained before it)'}</td></tr>"
        for step in capacity.steps
    )
    table = (
        "<div class='scroll'><table class='plain'><tr><th class='left'>step</th>"
        "<th>rate</th><th>achieved</th><th>requests</th><th>p50 ms</th><th>p99 ms</th>"
        f"<th>errors</th><th>SLO</th><th class='left'>why bad</th></tr>{rows}</table></div>"
    )
    return (
        f'<section id="capacity"><h2>Capacity</h2>{findings}'
        f"{capacity_chart(capacity)}{table}</section>"
    )


# --- the page -----------------------------------------------------------------------------


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
.verdict{border-radius:8px;padding:12px 16px;margin:0 0 18px;font-size:15px}
.verdict b{font-size:20px;letter-spacing:.02em}
.verdict.pass{background:#d1fae5;border:1px solid #6ee7b7;color:#065f46}
.verdict.fail{background:#fee2e2;border:1px solid #fca5a5;color:#991b1b}
.verdict ul{margin:6px 0 0;padding-left:20px}
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


def render_report(run: RunData) -> str:
    """The report of one run, as one self-contained HTML page."""
    summary = run.summary
    title = f"{summary.scenario} {summary.run_id} · loadgen report"
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>",
            _header(summary),
            _capacity(summary),
            '<section id="charts"><h2>Charts</h2>',
            time_charts(run),
            spectrum_chart(run),
            "</section>",
            _stats_table(summary),
            streaming_section(run),
            _thresholds(summary),
            _comparisons(summary),
            _slowest(summary),
            "<footer>Made by loadgen from summary.json, timeseries.csv and histograms.json "
            "in this folder.</footer>",
            f"</main><script>{SCRIPT}</script></body></html>\n",
        ]
    )


def write_report(folder: Path, run: RunData | None = None) -> Path:
    """Write folder/report.html atomically, of `run` (at the end of a run) or, without it,
    of what the folder holds (`loadgen report`); returns its path."""
    folder = Path(folder)
    page = render_report(run if run is not None else load_run(folder))
    return write_text_atomic(folder / REPORT_NAME, page)
