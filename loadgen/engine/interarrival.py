"""Arrival processes: how an open loop's requests fall around their mean rate.

A process here is a sequence of "due counts" n_0 = 0 <= n_1 <= ... with mean gap 1: request
i is due when n_i requests are due at the schedule's rate. Constant arrivals are 0, 1, 2, ...
(schedule.py's arithmetic); Poisson draws each gap from Exp(1); gamma from a gamma
distribution of shape k = burstiness and scale 1/k, as vLLM's benchmark_serving does
(mean 1, variance 1/k: k = 1 is Poisson, k < 1 burstier). Dividing by a constant rate, or
mapping through a ramp's due-count curve (schedule.ramping_offsets), gives the offsets.

Draws are seeded: a given seed gives the same schedule, in every worker process too, which
is how workers split one schedule exactly (schedule.take_share) rather than each drawing
its own. A run without a seed gets one drawn for it (`with_seed`), written in its summary.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import accumulate, count, islice, repeat, starmap, takewhile
from operator import truediv

from loadgen.scenario import ArrivalProcess, Scenario

SEED_BITS = 32


def due_counts(process: ArrivalProcess) -> Iterator[float]:
    """The process's due counts, endless."""
    if process.arrival == "constant":
        return map(float, count())
    generator = random.Random(process.seed)
    gaps: Iterator[float]
    if process.arrival == "poisson":
        gaps = map(generator.expovariate, repeat(1.0))
    else:
        shape = process.burstiness
        assert shape is not None, "the scenario requires burstiness with gamma"
        gaps = starmap(generator.gammavariate, repeat((shape, 1.0 / shape)))
    return accumulate(gaps, initial=0.0)


def drawn_offsets(
    rate: float, duration: float | None, requests: int | None, counts: Iterator[float]
) -> Iterator[float]:
    """Offsets of a constant mean rate from drawn due counts: n_i / rate, before `duration`
    and at most `requests` of them."""
    offsets: Iterator[float] = map(truediv, counts, repeat(rate))
    if duration is not None:
        offsets = takewhile(duration.__gt__, offsets)
    return offsets if requests is None else islice(offsets, requests)


def with_seed(scenario: Scenario) -> Scenario:
    """The scenario with a seed drawn for drawn arrivals that have none: every worker must
    draw the same schedule, and the summary says which one it was."""
    load = scenario.load
    if not isinstance(load, ArrivalProcess) or load.arrival == "constant" or load.seed is not None:
        return scenario
    seed = random.SystemRandom().getrandbits(SEED_BITS)
    return scenario.model_copy(update={"load": load.model_copy(update={"seed": seed})})
