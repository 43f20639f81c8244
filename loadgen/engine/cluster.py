"""The driver's connection to a Ray cluster for one run: found, checked, and let go after.

Ray is an optional dependency (`loadgen[ray]`): it is imported here, when a run asks for a
cluster, and nowhere else. Every way this can fail becomes one line: Ray missing is a usage
problem (exit 2), a cluster that cannot be reached is a run that cannot be carried out
(exit 3). `local` starts a Ray of its own on 127.0.0.1 for the run and stops it after.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from loadgen.engine.context import RunContext
from loadgen.engine.transports import check_reachable
from loadgen.engine.workers import Pool
from loadgen.errors import CannotRunError, UsageError
from loadgen.scenario import ClusterConfig
from loadgen.transport.credentials import CredentialSource

RAY_EXTRA = "pip install 'loadgen[ray]'"
NAMESPACE = "loadgen"  # the actors' names are `<run id>-<worker>` in it
# Ray replaces 127.0.0.1 by the host's outward address unless it believes multi-node
# clusters are off (the Windows/macOS default); read when Ray is imported. A `local` run
# turns them off so its Ray listens on the loopback only.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024  # messages are small; Ray's floor is 75 MiB
# A Ray that loadgen starts by itself (`local`) sends Ray's usage statistics nowhere; the
# user's own setting wins.
USAGE_STATS = "RAY_USAGE_STATS_ENABLED"


def import_ray(loopback_only: bool = False) -> ModuleType:
    """Ray itself, or a UsageError naming the extra that installs it."""
    if loopback_only and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
    except ImportError:
        raise UsageError(f"cluster: Ray is not installed: {RAY_EXTRA}") from None
    return ray


def gcs_host_port(address: str) -> tuple[str, int] | None:
    """HOST and PORT of a `HOST:PORT` or `ray://HOST:PORT` address; None for auto or local."""
    if address in ("auto", "local"):
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class RaySession:
    """The driver connected to Ray for one run."""

    ray: ModuleType
    address: str  # as the scenario or --ray gave it
    owned: bool  # this run called ray.init, so it calls ray.shutdown

    def cpus(self) -> int:
        """CPUs the cluster has (busy or not): one per worker."""
        return int(self.ray.cluster_resources().get("CPU", 0))

    def worker_count(self, workers: int | str) -> int:
        """`workers: N`, or "auto": every CPU of the cluster. More than it has could never
        be placed; fewer free (busy, or a run's actors still going) makes them wait."""
        cpus = self.cpus()
        count = workers if isinstance(workers, int) else cpus
        if count > cpus:
            raise CannotRunError(
                f"cluster: {count} workers need {count} CPUs; the Ray cluster at "
                f"{self.address} has {cpus}"
            )
        return max(count, 1)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()


async def connect(config: ClusterConfig, workers: int | str, timeout_s: float) -> RaySession:
    """Connect to the cluster `config` names (or start a local one), checking first that its
    address answers at all: Ray itself would retry an unreachable one for minutes."""
    address = config.address
    local = address == "local"
    target = gcs_host_port(address)
    on_loopback = target is not None and target[0] in ("127.0.0.1", "localhost", "::1")
    ray = import_ray(loopback_only=local or on_loopback)
    if address.startswith("ray://"):
        if importlib.util.find_spec("grpc") is None:  # Ray Client's transport
            raise UsageError(f"cluster.address: ray:// needs Ray Client: {RAY_EXTRA}")
    if ray.is_initialized():  # a program that drives loadgen has connected already
        return RaySession(ray, address, owned=False)
    if target is None and address == "auto":
        from_env = os.environ.get("RAY_ADDRESS")
        target = gcs_host_port(from_env) if from_env and ":" in from_env else None
    if target is not None:
        host, port = target
        shown = f"[{host}]" if ":" in host else host
        await check_reachable(f"tcp://{shown}:{port}", timeout_s, what="Ray cluster")
    options: dict[str, object] = {}
    if local:
        os.environ.setdefault(USAGE_STATS, "0")  # read by the Ray processes started below
        if _outward_node_address(ray):
            raise CannotRunError(
                f"cluster: Ray was imported before loadgen could keep it on 127.0.0.1; "
                f"set {LOOPBACK_ONLY}=0 in the environment"
            )
        options = dict(
            num_cpus=max(workers, os.cpu_count() or 1) if isinstance(workers, int) else None,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        )
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            log_to_driver=False,  # the actors' logs stay on their nodes: the live line is ours
            logging_level=logging.ERROR,  # Ray's notices would break the live line
            **options,
        )
    except ConnectionError:  # auto, and no Ray running here
        raise CannotRunError(
            "cannot find a Ray cluster: none runs on this host and RAY_ADDRESS is not set "
            "(give --ray HOST:PORT, or --ray local to start one)"
        ) from None
    except Exception as exc:  # Ray's own errors: a version mismatch, a refused client, ...
        raise CannotRunError(
            f"cannot connect to Ray at {address}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    return RaySession(ray, address, owned=True)


def _outward_node_address(ray: ModuleType) -> bool:
    """Whether this Ray would put a local node on the host's outward address."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    return bool(getattr(constants, "ENABLE_RAY_CLUSTER", False))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def ray_pool(session: RaySession, ctx: RunContext) -> Pool[Any]:
    """The run's workers as actors on `session`'s cluster. With `credentials: driver` (the
    default) the driver resolves AWS credentials once, here, and hands them to every actor
    in memory; with `node` each actor resolves its own host's."""
    from loadgen.engine.actors import RayPool  # Ray's own import: only for a cluster run

    scenario = ctx.scenario
    config = scenario.cluster
    assert config is not None and scenario.region is not None
    credentials = None
    if config.credentials == "driver":
        source = await CredentialSource.from_chain(
            scenario.region, allow_placeholder=scenario.uses_mock
        )
        credentials = source.current()
    return RayPool(ctx, session.address, credentials)
