"""report.html: one self-contained page per run, readable offline.

Everything is drawn here, in Python, as inline SVG: no scripts or fonts from anywhere else.
The only script on the page copies a Logs Insights query to the clipboard. Long time series
are bucketed to at most MAX_POINTS points a line, so a long run still makes a small file.
"""

from __future__ import annotations

import os
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from loadgen.api import logs_insights_query
from loadgen.errors import UsageError
from loadgen.results.rundata import load_run
from loadgen.results.svg import format_number, spectrum_chart, time_charts

REPORT_NAME = "report.html"
SLOWEST_SHOWN = 10

# --- tables -------------------------------------------------------------------------------


def _errors_cell(stats: dict[str, Any]) -> str:
    errors = stats.get("errors") or {}
    count = stats.get("error_count", sum(v for v in errors.values() if isinstance(v, int)))
    requests = stats.get("requests") or 0
    if not count:
        return '<span class="muted">0</span>'
    rate = f" ({100 * count / requests:.2g}%)" if requests else ""
    parts = [f'<b class="bad">{format_number(count)}{rate}</b>']
    parts += [f"{escape(str(code))} {format_number(n)}" for code, n in errors.items()]
    statuses = stats.get("model_error_status") or {}
    if statuses:
        parts.append(
            "model status "
            + ", ".join(f"{escape(str(s))}×{format_number(n)}" for s, n in statuses.items())
        )
    return "<br>".join(parts)


def _correlation_cell(stats: dict[str, Any]) -> str:
    corr = stats.get("correlation") or {}
    if not any(corr.get(key) for key in ("matched", "mismatched", "missing")):
        return '<span class="muted">–</span>'
    bad = [
        f'<b class="bad">{format_number(corr[key])} {key}</b>'
        for key in ("mismatched", "missing")
        if corr.get(key)
    ]
    return "<br>".join([f"{format_number(corr.get('matched', 0))} matched", *bad])


def _stats_row(name: str, stats: dict[str, Any], variant: bool, only: str | None = None) -> str:
    latency = stats.get("latency_ms") or {}
    service = stats.get("service_time_ms") or {}
    suffix = f' <span class="muted">· {escape(only)}</span>' if only else ""
    cells = [
        f'<th scope="row" class="{"variant" if variant else "endpoint"}">{escape(name)}{suffix}</th>',
        f"<td>{format_number(stats.get('requests'))}</td>",
        f"<td>{format_number(stats.get('throughput_rps'))}</td>",
        f'<td class="left">{_errors_cell(stats)}</td>',
        *(
            f"<td>{format_number(latency.get(key), 2)}</td>"
            for key in ("p50", "p90", "p99", "p999", "max")
        ),
        f"<td>{format_number(latency.get('mean'), 2)}</td>",
        f"<td>{format_number(service.get('p50'), 2)} / {format_number(service.get('p99'), 2)}</td>",
        f'<td class="left">{_correlation_cell(stats)}</td>',
        f"<td>{format_number(stats.get('late_starts'))}</td>",
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
            f"<td>{format_number(e.get('limit'), 3)}</td><td>{format_number(e.get('observed'), 3)}</td>"
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
        return format_number(value)
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
            f"<td>{format_number(r.get('base_ms'), 2)}</td><td>{format_number(r.get('new_ms'), 2)}</td>"
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
        p_html = f" · p = {format_number(p_value, 3)}" if p_value is not None else ""
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


def _slowest(summary: dict[str, Any]) -> str:
    cards = []
    for position, (label, stats) in enumerate(summary["endpoints"].items()):
        slowest = [s for s in stats.get("slowest") or [] if isinstance(s, dict)]
        if not slowest:
            continue
        rows = "".join(
            f"<tr><td class='left'><code>{escape(str(s.get('trace_id', '')))}</code></td>"
            f"<td>{format_number(s.get('latency_ms'), 2)}</td>"
            f"<td class='left'>{escape(str(s.get('variant') or ''))}</td></tr>"
            for s in slowest[:SLOWEST_SHOWN]
        )
        more = (
            f" (the {SLOWEST_SHOWN} slowest are listed; the query finds all {len(slowest)})"
            if len(slowest) > SLOWEST_SHOWN
            else ""
        )
        endpoint_name = label.split("/", 1)[0]
        query = logs_insights_query(endpoint_name, [str(s.get("trace_id", "")) for s in slowest])[
            "query"
        ]
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
        f"{key.replace('_', ' ')} {format_number(load[key], 0)}"
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
        ("duration", f"{format_number(summary.get('duration_s'), 1)} s"),
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
        ("requests", format_number(requests)),
        ("achieved rate", f"{format_number(summary.get('achieved_rate_rps'))}/s"),
        ("errors", f"{100 * errors / requests:.2f}%" if requests else "–"),
        ("p50", f"{format_number(latency.get('p50'), 2)} ms"),
        ("p99", f"{format_number(latency.get('p99'), 2)} ms"),
        ("max", f"{format_number(latency.get('max'), 2)} ms"),
        ("mismatched", format_number(corr.get("mismatched", 0) + corr.get("missing", 0))),
    ]
    tiles_html = "".join(f"<div class='tile'><span>{k}</span><b>{v}</b></div>" for k, v in tiles)
    warnings = []
    if summary.get("client_failure"):
        warnings.append(f"client failure: {escape(str(summary['client_failure']))}")
    if summary.get("interrupted_requests"):
        warnings.append(
            f"{format_number(summary['interrupted_requests'])} requests were still in flight at the end"
        )
    if total.get("out_of_range"):
        warnings.append(
            f"{format_number(total['out_of_range'])} latencies above one hour were not recorded"
        )
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
            time_charts(run),
            spectrum_chart(run),
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
