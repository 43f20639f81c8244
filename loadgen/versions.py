"""What `loadgen compare` compares: versions (an endpoint or variant of a run, or a .hlog
file) read from run folders, summary.json and .hlog files, and how each run was loaded.

A version is read as the run wrote it. A side without a summary.json (a bare .hlog) has
latencies only: its throughput and error rate are unknown (None, not zero), and it has no
run id and no load profile. A streaming run's versions may be compared on their token times
instead (TTFT, ITL, TPOT), from histograms.json; a side without them cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from loadgen.errors import UsageError
from loadgen.histograms import HistogramPair, RunHistograms, new_histogram
from loadgen.results.writer import hlog_name
from loadgen.scenario import CompareMetric, LoadConfig
from loadgen.summary import (
    CapacitySummary,
    EndpointSummary,
    RunRef,
    RunSummary,
    TrafficSummary,
)

# --- versions: what is compared -------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One side of a comparison: an endpoint (or variant) of one run, or one .hlog file."""

    name: str
    latency: HdrHistogram  # what is compared: latency, or the token times a metric names
    requests: int
    errors: int
    # None: no run summary counted them (a bare .hlog holds latencies only)
    throughput_rps: float | None = None
    error_rate: float | None = None


def versions_of(
    histograms: RunHistograms,
    counted: Mapping[str, TrafficSummary],
    *,
    variants: bool,
    metric: CompareMetric = CompareMetric.LATENCY,
) -> dict[str, Version]:
    """Each endpoint of a run, and with `variants` each of its variants ("label/variant"),
    by `metric`'s histogram (empty where no stream ended well); requests and errors from
    `counted` (by the same names), else the histogram's count."""
    versions: dict[str, Version] = {}
    for label, entry in histograms.endpoints.items():
        versions[label] = _version(label, _histogram(entry, metric), counted)
        if variants:
            for variant, pair in entry.variants.items():
                name = f"{label}/{variant}"
                versions.setdefault(name, _version(name, _histogram(pair, metric), counted))
    return versions


def _histogram(pair: HistogramPair, metric: CompareMetric) -> HdrHistogram:
    if metric is CompareMetric.LATENCY:
        return pair.latency
    if pair.stream is None:
        return new_histogram()
    return {
        CompareMetric.TTFT: pair.stream.ttft,
        CompareMetric.ITL: pair.stream.itl,
        CompareMetric.TPOT: pair.stream.tpot,
    }[metric]


def require_streams(histograms: RunHistograms, metric: CompareMetric, where: Path | str) -> None:
    """A comparison on a stream metric needs stream histograms: one line if there are none."""
    if metric.streams and not histograms.streamed:
        raise UsageError(
            f"{where}: no stream histograms to compare {metric} on (a run that does not "
            "stream, or none of whose streams ended well, or from before loadgen kept them)"
        )


def _version(name: str, latency: HdrHistogram, counted: Mapping[str, TrafficSummary]) -> Version:
    stats = counted.get(name)
    if stats is None:
        return Version(name, latency, latency.get_total_count(), 0)
    error_rate = stats.error_count / stats.requests if stats.requests else 0.0
    return Version(
        name, latency, stats.requests, stats.error_count, stats.throughput_rps, error_rate
    )


def counted_by_name(endpoints: Mapping[str, EndpointSummary]) -> dict[str, TrafficSummary]:
    """A run's endpoints and their variants by the names versions take ("label/variant")."""
    counted: dict[str, TrafficSummary] = {}
    for label, endpoint in endpoints.items():
        counted[label] = endpoint
        for variant, stats in endpoint.variants.items():
            counted[f"{label}/{variant}"] = stats
    return counted


@dataclass(frozen=True)
class Profile:
    """How a run loaded its endpoints: what must match for two runs' numbers to compare fairly."""

    load: LoadConfig
    workers: int
    transport: str
    busy_poll: bool = False  # a sleeping loop's wake-ups are in its service times

    @classmethod
    def of(cls, summary: RunSummary) -> Profile:
        return cls(summary.load_config, summary.workers, summary.transport, summary.busy_poll)


@dataclass(frozen=True)
class Side:
    """One argument of `loadgen compare` as read: its versions, its run's id, and its load
    profile (None for a .hlog file, or a folder without a summary.json)."""

    path: Path
    versions: dict[str, Version]
    run_id: str | None
    profile: Profile | None
    capacity: CapacitySummary | None = None  # a capacity-search run's finding

    @property
    def ref(self) -> RunRef:
        return RunRef(path=str(self.path), run_id=self.run_id)


def load_versions(path: Path) -> dict[str, Version]:
    """Endpoints of a run folder (or of its summary.json), or a .hlog file as one version."""
    return load_side(path, variants=False).versions


def versions_in_run(path: Path) -> dict[str, Version]:
    """Endpoints and their variants ("label/variant") of a run folder."""
    return load_side(path, variants=True).versions


def load_side(path: Path, *, variants: bool, metric: CompareMetric = CompareMetric.LATENCY) -> Side:
    """A run folder, its summary.json or a .hlog file; with `variants`, each endpoint's
    variants too ("label/variant"); each by `metric`'s histogram."""
    if not path.exists():
        raise UsageError(f"{path}: no such run folder or file")
    if path.is_file() and path.suffix == ".hlog":
        if metric.streams:
            raise UsageError(f"{path}: a .hlog holds latency only, not {metric} (--metric)")
        return _hlog_file(path)
    folder = path
    if path.is_file() and path.name in ("summary.json", "histograms.json"):
        folder = path.parent
    elif not path.is_dir():
        raise UsageError(f"{path}: expected a run folder, a summary.json or a .hlog file")
    summary = None
    counted: dict[str, TrafficSummary] = {}
    if (folder / "summary.json").is_file():
        summary = RunSummary.load(folder / "summary.json")
        counted = counted_by_name(summary.endpoints)
    run_id = None if summary is None else summary.run_id
    profile = None if summary is None else Profile.of(summary)
    capacity = None if summary is None else summary.capacity
    if (folder / "histograms.json").is_file():
        histograms = RunHistograms.load(folder / "histograms.json")
        require_streams(histograms, metric, folder / "histograms.json")
        versions = versions_of(histograms, counted, variants=variants, metric=metric)
        return Side(path, versions, run_id, profile, capacity)
    if metric.streams:
        raise UsageError(f"{folder}: no histograms.json, whose stream histograms {metric} needs")
    hlogs = sorted(folder.glob("*.hlog"))
    if not hlogs:
        raise UsageError(f"{folder}: no histograms.json or .hlog files; not a loadgen run folder")
    label_of = {hlog_name(label): label for label in counted}
    versions = {}
    for hlog in hlogs:
        name = label_of.get(hlog.name, hlog.stem)
        versions[name] = _version(name, _hlog_latency(hlog), counted)
    return Side(path, versions, run_id, profile, capacity)


def _hlog_file(path: Path) -> Side:
    """One .hlog: named by its endpoint's label, and counted, when a summary.json beside it
    says so. It has no load profile: a log of latencies says nothing of how they were made."""
    summary = None
    counted: dict[str, TrafficSummary] = {}
    if (path.parent / "summary.json").is_file():
        try:
            summary = RunSummary.load(path.parent / "summary.json")
            counted = counted_by_name(summary.endpoints)
        except UsageError:
            pass  # the log alone is enough; only its name, run id and counts are lost
    name = {hlog_name(label): label for label in counted}.get(path.name, path.stem)
    run_id = None if summary is None else summary.run_id
    return Side(path, {name: _version(name, _hlog_latency(path), counted)}, run_id, None)


def _hlog_latency(path: Path) -> HdrHistogram:
    latency = new_histogram()
    intervals = 0
    try:
        reader = HistogramLogReader(str(path), new_histogram())
        try:
            while reader.add_next_interval_histogram(latency) is not None:
                intervals += 1
        finally:
            reader.input_file.close()  # hdrh never closes it
    except Exception as error:  # hdrh raises many types (binascii, zlib, its own) on bad data
        raise UsageError(f"{path}: not a readable HdrHistogram log ({error})") from None
    if not intervals:
        raise UsageError(f"{path}: no interval histograms; not an HdrHistogram log?")
    return latency


# --- load profiles ----------------------------------------------------------------------------

# the order differences are listed in; a field not named here (a new executor's) comes after
_LOAD_ORDER = (
    "executor",
    "rate",
    "start_rate",
    "stages",
    "concurrency",
    "max_in_flight",
    "duration",
    "requests",
    "timeout",
    "connect_timeout",
)


_ARRIVAL_DEFAULTS: dict[str, object] = {"arrival": "constant", "burstiness": None, "seed": None}


def profile_warnings(base: Profile | None, new: Profile | None) -> tuple[str, ...]:
    """One line per setting in which the runs' load profiles differ: a latency change may then
    come from the load rather than the endpoint. Nothing when a side has no profile."""
    if base is None or new is None:
        return ()
    settings = [
        *_load_settings(base.load, new.load),
        ("workers", base.workers, new.workers),
        ("transport", base.transport, new.transport),
        ("busy_poll", base.busy_poll, new.busy_poll),
    ]
    return tuple(
        f"load profiles differ: {name} {_setting(b)} (base) vs {_setting(n)} (new)"
        for name, b, n in settings
        if b != n
    )


def _load_settings(base: LoadConfig, new: LoadConfig) -> list[tuple[str, object, object]]:
    """Each field of either load section; one that only the other executor has is None."""
    b, n = base.model_dump(), new.model_dump()
    for data in (b, n):  # even arrivals say nothing a closed loop's absent process does not
        for key, default in _ARRIVAL_DEFAULTS.items():
            if data.get(key, default) == default:
                data.pop(key, None)
    present = set(b) | set(n)
    names = [name for name in _LOAD_ORDER if name in present]
    names += sorted(present - set(names))
    return [(f"load.{name}", b.get(name), n.get(name)) for name in names]


def _setting(value: object) -> str:
    """As a scenario file would say it: 100 not 100.0, stages in flow style, unset for None."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_setting(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_setting(item)}" for key, item in value.items()) + "}"
    return str(value)
