"""What `loadgen compare` compares: versions (an endpoint or variant of a run, or a .hlog
file) read from run folders, summary.json and .hlog files.

A version is read as the run wrote it. A side without a summary.json (a bare .hlog) has
latencies only: its throughput and error rate are unknown (None, not zero), and it has no
run id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from loadgen.errors import UsageError
from loadgen.histograms import RunHistograms, new_histogram
from loadgen.results.writer import hlog_name
from loadgen.summary import EndpointSummary, RunRef, RunSummary, TrafficSummary

# --- versions: what is compared -------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One side of a comparison: an endpoint (or variant) of one run, or one .hlog file."""

    name: str
    latency: HdrHistogram
    requests: int
    errors: int
    # None: no run summary counted them (a bare .hlog holds latencies only)
    throughput_rps: float | None = None
    error_rate: float | None = None


def versions_of(
    histograms: RunHistograms, counted: Mapping[str, TrafficSummary], *, variants: bool
) -> dict[str, Version]:
    """Each endpoint of a run, and with `variants` each of its variants ("label/variant");
    requests and errors from `counted` (by the same names), else the histogram's count."""
    versions: dict[str, Version] = {}
    for label, entry in histograms.endpoints.items():
        versions[label] = _version(label, entry.latency, counted)
        if variants:
            for variant, pair in entry.variants.items():
                name = f"{label}/{variant}"
                versions.setdefault(name, _version(name, pair.latency, counted))
    return versions


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
class Side:
    """One argument of `loadgen compare` as read: its versions, and its run's id (None for
    a .hlog file without a summary.json beside it, or a folder without one)."""

    path: Path
    versions: dict[str, Version]
    run_id: str | None

    @property
    def ref(self) -> RunRef:
        return RunRef(path=str(self.path), run_id=self.run_id)


def load_versions(path: Path) -> dict[str, Version]:
    """Endpoints of a run folder (or of its summary.json), or a .hlog file as one version."""
    return load_side(path, variants=False).versions


def versions_in_run(path: Path) -> dict[str, Version]:
    """Endpoints and their variants ("label/variant") of a run folder."""
    return load_side(path, variants=True).versions


def load_side(path: Path, *, variants: bool) -> Side:
    """A run folder, its summary.json or a .hlog file; with `variants`, each endpoint's
    variants too ("label/variant")."""
    if not path.exists():
        raise UsageError(f"{path}: no such run folder or file")
    if path.is_file() and path.suffix == ".hlog":
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
    if (folder / "histograms.json").is_file():
        histograms = RunHistograms.load(folder / "histograms.json")
        versions = versions_of(histograms, counted, variants=variants)
        return Side(path, versions, run_id)
    hlogs = sorted(folder.glob("*.hlog"))
    if not hlogs:
        raise UsageError(f"{folder}: no histograms.json or .hlog files; not a loadgen run folder")
    label_of = {hlog_name(label): label for label in counted}
    versions = {}
    for hlog in hlogs:
        name = label_of.get(hlog.name, hlog.stem)
        versions[name] = _version(name, _hlog_latency(hlog), counted)
    return Side(path, versions, run_id)


def _hlog_file(path: Path) -> Side:
    """One .hlog: named by its endpoint's label, and counted, when a summary.json beside it
    says so."""
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
    return Side(path, {name: _version(name, _hlog_latency(path), counted)}, run_id)


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
