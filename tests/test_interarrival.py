"""Arrival processes: Poisson and gamma gaps with the right mean and dispersion, seeded
schedules that repeat (in one process, split across workers, and in a real run), and a
ramp that keeps its shape under drawn arrivals."""

from __future__ import annotations

import math
import statistics
import time
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from loadgen.engine.executors import Executor
from loadgen.engine.interarrival import due_counts, with_seed
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.engine.schedule import ramp_requests, take_share
from loadgen.scenario import ConstantArrivalRate, RampingArrivalRate, Scenario
from tests.servers import echo_response, scenario, serve

DRAWS = 100_000
RATE = 250.0  # req/s: gaps of 4 ms on average


def open_loop(**fields: Any) -> ConstantArrivalRate:
    return ConstantArrivalRate(
        executor="constant-arrival-rate", rate=RATE, requests=DRAWS + 1, **fields
    )


def gaps_of(config: ConstantArrivalRate | RampingArrivalRate) -> list[float]:
    offsets = list(Executor.of(config).offsets())  # type: ignore[attr-defined]
    return [later - earlier for earlier, later in pairwise(offsets)]


def dispersion(gaps: list[float]) -> tuple[float, float]:
    """Mean gap, and the squared coefficient of variation: 1 for Poisson, 1/k for gamma(k)."""
    mean = statistics.fmean(gaps)
    return mean, statistics.variance(gaps, mean) / mean**2


@pytest.mark.parametrize(
    ("fields", "cv2"),
    [
        ({"arrival": "poisson"}, 1.0),
        ({"arrival": "gamma", "burstiness": 1.0}, 1.0),  # gamma of shape 1 is Poisson
        ({"arrival": "gamma", "burstiness": 0.25}, 4.0),  # bursty: variance 1/k
        ({"arrival": "gamma", "burstiness": 4.0}, 0.25),  # smoother than Poisson
    ],
)
def test_drawn_gaps_have_the_mean_rate_and_dispersion_asked(
    fields: dict[str, Any], cv2: float
) -> None:
    """Over 100,000 seeded gaps the mean is 1/rate within 1% (its standard error is
    sqrt(cv2 / n), at most 0.7%), and the squared coefficient of variation within 5%."""
    mean, observed = dispersion(gaps_of(open_loop(seed=11, **fields)))
    assert mean == pytest.approx(1 / RATE, rel=0.01 * max(1.0, math.sqrt(cv2)))
    assert observed == pytest.approx(cv2, rel=0.05 * max(1.0, math.sqrt(cv2)))


def test_poisson_counts_in_windows_have_variance_equal_to_their_mean() -> None:
    """Counts of a Poisson process in 0.1 s windows: mean 25 and variance 25 (index of
    dispersion 1); constant arrivals have no variance at all."""

    seconds = DRAWS / RATE  # about 100,000 draws; the windows of the whole schedule

    def counts(config: ConstantArrivalRate) -> list[int]:
        windows = [0] * int(seconds / 0.1)
        for offset in Executor.of(config).offsets():  # type: ignore[attr-defined]
            windows[int(offset * 10 + 1e-6)] += 1  # i / 250 * 10 may fall just short
        return windows

    timed = {"requests": None, "duration": seconds}
    drawn = counts(open_loop(arrival="poisson", seed=3).model_copy(update=timed))
    assert statistics.fmean(drawn) == pytest.approx(25.0, rel=0.01)  # standard error 0.3%
    # the ratio's standard error is sqrt(2 / 4000) = 0.022: within 3 of them
    assert statistics.variance(drawn) / statistics.fmean(drawn) == pytest.approx(1.0, abs=0.07)
    assert statistics.pvariance(counts(open_loop().model_copy(update=timed))) == 0


def test_a_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    def first(config: ConstantArrivalRate) -> list[float]:
        return list(islice(Executor.of(config).offsets(), 1000))  # type: ignore[attr-defined]

    again = first(open_loop(arrival="gamma", burstiness=0.5, seed=42))
    assert again == first(open_loop(arrival="gamma", burstiness=0.5, seed=42))
    assert again != first(open_loop(arrival="gamma", burstiness=0.5, seed=43))
    assert again[0] == 0.0 and again == sorted(again)
    assert first(open_loop(arrival="poisson", seed=42)) != first(
        open_loop(arrival="poisson", seed=43)
    )


@pytest.mark.parametrize("shares", [2, 3])
def test_workers_split_one_drawn_schedule_exactly(shares: int) -> None:
    """Each worker draws the same seeded schedule and takes every shares-th start: together
    they send the one schedule, none twice."""
    config = open_loop(arrival="poisson", seed=5).model_copy(update={"requests": 3000})
    whole = list(Executor.of(config).offsets())  # type: ignore[attr-defined]
    parts = [
        list(take_share(Executor.of(config, share, shares).offsets(), share, shares))  # type: ignore[attr-defined]
        for share in range(shares)
    ]
    assert sorted(offset for part in parts for offset in part) == whole
    assert [len(part) for part in parts] == [len(whole[share::shares]) for share in range(shares)]


def test_a_duration_bounds_drawn_offsets() -> None:
    config = ConstantArrivalRate(
        executor="constant-arrival-rate", rate=RATE, duration=20, arrival="poisson", seed=9
    )
    offsets = list(Executor.of(config).offsets())  # type: ignore[attr-defined]
    assert offsets[-1] < 20.0
    assert len(offsets) == pytest.approx(RATE * 20, rel=0.03)  # 5,000 +- 1.4 standard errors


def test_a_ramp_under_poisson_arrivals_keeps_its_shape() -> None:
    """50 -> 450 req/s over 40 s then 450 for 10 s: 14,500 requests due; drawn arrivals
    give that many within 2% and their rate in the last 10 s is 450 within 5%."""
    stages = [{"duration": 40, "target": 450}, {"duration": 10, "target": 450}]
    config = RampingArrivalRate(
        executor="ramping-arrival-rate", start_rate=50, stages=stages, arrival="poisson", seed=1
    )
    offsets = list(Executor.of(config).offsets())  # type: ignore[attr-defined]
    due = ramp_requests(50, [(40, 450), (10, 450)])
    assert due == 14_500
    assert len(offsets) == pytest.approx(due, rel=0.02)
    assert offsets == sorted(offsets) and offsets[-1] <= 50.0
    assert sum(1 for offset in offsets if offset >= 40) / 10 == pytest.approx(450, rel=0.05)
    first_second = sum(1 for offset in offsets if offset < 1)
    assert 25 <= first_second <= 85  # ~55 due: the ramp starts slow, not at its mean


def test_a_run_without_a_seed_gets_one_drawn_and_written() -> None:
    base = scenario("http://127.0.0.1:1", arrival="poisson")
    seeded = with_seed(base)
    assert base.load.seed is None  # type: ignore[union-attr]
    assert isinstance(seeded.load.seed, int)  # type: ignore[union-attr]
    assert with_seed(seeded) is seeded  # a given seed is kept
    constant = scenario("http://127.0.0.1:1")
    assert with_seed(constant) is constant
    assert list(islice(due_counts(seeded.load), 3)) == list(islice(due_counts(seeded.load), 3))  # type: ignore[arg-type]


@pytest.mark.usefixtures("fake_aws")
async def test_a_seeded_run_repeats_its_schedule(tmp_path: Path) -> None:
    """Two runs of seed 7 reach the server at seed 7's Poisson offsets, within 3 ms in the
    median once the run's start and the way to the server are taken out; a run of seed 8
    does not (12.4 ms off).

    Taken out by the median, not by the first arrival: one late first request shifted every
    offset of a run by 5 ms beside busy loops. 200 requests, not 60, so that two unrelated
    walks are at least 5.5 ms apart (of 400 pairs), which a seed lost on the way could not
    meet; the runs' own distance stayed under 1 ms beside six busy loops."""
    requests = 200
    arrivals: list[float] = []

    def seeded(url: str, seed: int) -> Scenario:
        return scenario(url, rate=300, requests=requests, arrival="poisson", seed=seed)

    schedule = list(Executor.of(seeded("http://127.0.0.1:9", 7).load).offsets())  # type: ignore[attr-defined]

    async def handler(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return echo_response(request)

    async def off_schedule(seed: int) -> float:
        """The median distance of the run's arrivals from seed 7's offsets, aligned."""
        arrivals.clear()
        result = await run_scenario(seeded(url, seed), RunOptions(out=tmp_path, quiet=True))
        assert result.summary.load_config.seed == seed  # type: ignore[union-attr]
        assert result.summary.total.requests == requests
        lag = [at - offset for at, offset in zip(arrivals, schedule, strict=True)]
        return statistics.median(abs(value - statistics.median(lag)) for value in lag)

    async with serve(handler) as url:
        first, again, other = await off_schedule(7), await off_schedule(7), await off_schedule(8)
    assert first < 0.003 and again < 0.003, (first, again)  # 0.3 ms idle
    assert other > 0.008, other
