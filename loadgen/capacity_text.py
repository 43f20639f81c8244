"""A capacity search in words: each step as the console streams it, and the finding as the
console, summary.md and `loadgen compare` say it. Views of the summary's CapacitySummary."""

from __future__ import annotations

from rich.markup import escape

from loadgen.scenario import Slo
from loadgen.summary import CapacityChange, CapacityStep, CapacitySummary
from loadgen.table import ms_text, rate_text


def step_line(step: CapacityStep) -> str:
    """One judged step, in rich markup: its figures, then good, or bad and why."""
    figures = (
        f"{step.label}  {rate_text(step.rate)} req/s  achieved {rate_text(step.achieved_rps)}  "
        f"p50 {ms_text(step.p50_ms)} ms  p99 {ms_text(step.p99_ms)} ms  "
        f"errors {step.error_rate:.1%}"
    )
    if step.ttft_p99_ms is not None:
        figures += f"  TTFT p99 {ms_text(step.ttft_p99_ms)} ms"
    if not step.settled:
        figures += "  (the queue had not drained before it)"
    if step.good:
        return f"{escape(figures)}  [green]good[/green]"
    return f"{escape(figures)}  [red]bad[/red]: {escape('; '.join(step.failures))}"


def slo_text(slo: Slo) -> str:
    """The SLO as its limits: latency p99 <= 250 ms, errors <= 1%."""
    parts = [f"latency {key} <= {limit:g} ms" for key, limit in slo.latency_ms.items()]
    parts += [f"TTFT {key} <= {limit:g} ms" for key, limit in slo.ttft_ms.items()]
    parts.append(f"errors <= {slo.error_rate:.2%}".replace(".00%", "%"))
    return ", ".join(parts)


def capacity_lines(capacity: CapacitySummary) -> list[str]:
    """The finding (plain text): the capacity within the SLO, and the knee."""
    steps = len(capacity.steps)
    knee = capacity.knee_rate_rps
    return [
        f"capacity: {capacity.text}, SLO {slo_text(capacity.slo)} ({steps} steps)",
        "knee: "
        + (
            "latency did not rise over the rates tried"
            if knee is None
            else f"{knee:g} req/s, the last rate before p50 rose"
        ),
    ]


def change_line(change: CapacityChange) -> str:
    """Two runs' capacities (plain text), and the limit's outcome when one was given."""

    def rate(value: float | None) -> str:
        return "none within the SLO" if value is None else f"{value:g} req/s"

    text = f"capacity: base {rate(change.base_rps)}, new {rate(change.new_rps)}"
    if change.change is not None:
        text += f" ({change.change:+.1%})"
    if change.max_drop is not None:
        verdict = "FAILED" if change.failed else "passed"
        text += f"; limit: a drop of at most {change.max_drop:.0%}: {verdict}"
    return text
