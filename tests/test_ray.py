"""Workers as Ray actors on a real Ray cluster: two nodes on 127.0.0.1, one CPU each."""

from __future__ import annotations

import asyncio
import html
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from loadgen import api
from loadgen.console import print_summary
from loadgen.engine.cluster import LOOPBACK_ONLY, USAGE_STATS, import_ray
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.errors import ScenarioError, UsageError
from loadgen.histograms import RunHistograms
from loadgen.plan import plan_of
from loadgen.region import resolve_region
from loadgen.scenario import ClusterConfig, scenario_from_dict
from loadgen.summary import RunSummary, StopReason
from tests.faulty import RawRequest, RawServer, closed_port, ok_response, response_bytes
from tests.servers import hlog_total, scenario
from tests.test_cli import fake_env, loadgen, write

pytestmark = pytest.mark.usefixtures("fake_aws")
NODE_KEY = "AKIDNODE"
DRIVER_KEY = "AKIDTEST"  # fake_aws's


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """Two Ray nodes with one CPU each: each actor lands on a node of its own."""
    os.environ[LOOPBACK_ONLY] = "0"  # before Ray is imported: it stays on 127.0.0.1
    os.environ[USAGE_STATS] = "0"  # and reports nothing anywhere
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as env:  # what the nodes' own credential chain finds
        env.setenv("AWS_ACCESS_KEY_ID", NODE_KEY)
        env.setenv("AWS_SECRET_ACCESS_KEY", "node-secret")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1"}
        )
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


class Lying:
    """Answers every request, and counts what it did: every 7th echoes another trace ID
    (mismatched), every 5th of the others echoes nothing (missing). It notes the access key
    each request was signed with."""

    def __init__(self) -> None:
        self.requests = self.matched = self.mismatched = self.missing = 0
        self.keys: set[str] = set()

    async def __call__(self, request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        self.requests += 1
        if signed := re.search(rb"Credential=([A-Z0-9]+)/", request.head):
            self.keys.add(signed[1].decode())
        if self.requests % 7 == 0:
            self.mismatched += 1
            headers = {api.H_INVOKED_VARIANT: "AllTraffic", api.H_CUSTOM_ATTRIBUTES: "trace=none"}
            writer.write(response_bytes(headers=headers))
        elif self.requests % 5 == 0:
            self.missing += 1
            writer.write(response_bytes(headers={api.H_INVOKED_VARIANT: "AllTraffic"}))
        else:
            self.matched += 1
            writer.write(ok_response(request))
        return True


async def test_two_actors_on_two_nodes_merge_what_the_server_did(
    ray_cluster: Any, tmp_path: Path
) -> None:
    lying = Lying()
    server = RawServer(lying)
    await server.start()
    try:
        s = scenario(server.url, rate=100, duration="1s").model_copy(
            update={"workers": 2, "cluster": ClusterConfig(address=ray_cluster.address)}
        )
        result = await run_scenario(s, RunOptions(out=tmp_path, quiet=True))
    finally:
        await server.stop()
    summary = result.summary
    total = summary.total
    # 100/s for 1 s, split 50/s + 50/s: every scheduled request reached the server
    assert server.requests == lying.requests == 100 == total.requests == total.ok
    # signed with the driver's credentials (cluster.credentials: driver), not the nodes'
    assert lying.keys == {DRIVER_KEY}
    # complete; the mismatches fail the default mismatch_rate gate, nothing else
    assert summary.complete is True and result.exit_code == 1
    assert summary.verdict.reasons == ("ep: mismatch_rate observed 0.14, limit <= 0",)
    correlation = total.correlation
    assert (correlation.matched, correlation.mismatched, correlation.missing) == (
        lying.matched,
        lying.mismatched,
        lying.missing,
    )
    assert lying.mismatched == 100 // 7 and lying.missing > 0
    # the merged histograms hold every request once
    histograms = RunHistograms.load(result.folder / "histograms.json")
    assert histograms.endpoints["ep"].latency.get_total_count() == 100
    assert hlog_total(result.folder) == 100
    # two actors, two nodes, both of this cluster
    cluster = summary.cluster
    assert cluster is not None and cluster.engine == "ray"
    assert cluster.address == ray_cluster.address
    placement = f"2 Ray actors on 2 node(s) at {ray_cluster.address}"
    assert summary.placement == placement  # in every view of the run
    assert f"{placement}." in (result.folder / "summary.md").read_text()
    assert html.escape(placement) in (result.folder / "report.html").read_text()
    header = io.StringIO()
    print_summary(summary, Console(file=header, width=200))
    assert placement in header.getvalue().splitlines()[0]
    assert sorted(worker.index for worker in cluster.workers) == [0, 1]
    nodes = {worker.node for worker in cluster.workers}
    assert cluster.nodes == len(nodes) == 2
    assert nodes == {node.node_id for node in ray_cluster.list_all_nodes()}
    assert all(worker.pid > 0 and worker.pid != os.getpid() for worker in cluster.workers)
    saved = json.loads((result.folder / "summary.json").read_text())
    assert saved["cluster"]["workers"][0].keys() == {"index", "node", "pid"}


async def test_an_actor_killed_mid_run_stops_the_run(ray_cluster: Any, tmp_path: Path) -> None:
    """Worker 1 is killed mid-run. (The run also has `credentials: node`: the actors sign
    with their nodes' key, not the driver's; one run for both keeps the suite short.)"""
    import ray

    by_worker: Counter[str] = Counter()  # requests the server saw, by the trace ID's worker
    keys: set[str] = set()

    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        by_worker[(request.custom_attributes or "").split("-")[1]] += 1
        if signed := re.search(rb"Credential=([A-Z0-9]+)/", request.head):
            keys.add(signed[1].decode())
        writer.write(ok_response(request))
        return True

    server = RawServer(answer)
    await server.start()

    async def kill_worker_1() -> None:
        while server.requests < 90:  # 1.5 s at 60/s: each actor has reported two ticks
            await asyncio.sleep(0.05)
        names = ray.util.list_named_actors(all_namespaces=True)
        (name,) = [entry["name"] for entry in names if entry["name"].endswith("-1")]
        ray.kill(ray.get_actor(name, namespace="loadgen"), no_restart=True)

    try:
        cluster = ClusterConfig(address=ray_cluster.address, credentials="node")
        s = scenario(server.url, rate=60, duration="20s").model_copy(
            update={"workers": 2, "cluster": cluster}
        )
        killer = asyncio.create_task(kill_worker_1())
        result = await asyncio.wait_for(
            run_scenario(s, RunOptions(out=tmp_path, quiet=True)), timeout=30
        )
        await killer
    finally:
        await server.stop()
    summary = result.summary
    assert summary.complete is False and result.exit_code == 3
    assert summary.stop_reason is StopReason.WORKER_CRASHED
    assert summary.cluster is not None
    node = next(w.node for w in summary.cluster.workers if w.index == 1)
    assert summary.stop_detail == (
        f"worker 1 on node {node} (127.0.0.1): the actor was killed (ray.kill)"
    )
    assert summary.duration_s < 10  # stopped, not run to its 20 s
    # the results so far are written: all of worker 0's requests (it drained and sent its
    # final state), and worker 1's up to its last tick (at most 0.5 s of them lost)
    saved = RunSummary.load(result.folder / "summary.json")
    assert saved.verdict.exit_code == 3 and saved.total.requests == summary.total.requests
    assert by_worker["000"] < summary.total.requests <= server.requests
    assert keys == {NODE_KEY}  # credentials: node


def test_ray_local_runs_on_a_machine_without_a_cluster(tmp_path: Path) -> None:
    """`--ray local` starts a Ray of its own on 127.0.0.1 and stops it after."""
    path = write(
        tmp_path,
        {
            "name": "local-ray",
            "endpoint_url": "mock",
            "region": "us-east-1",
            "workers": 2,
            "endpoints": [{"name": "ep"}],
            "request": {"body": "{}"},
            "load": {"executor": "constant-arrival-rate", "rate": 50, "duration": "1s"},
        },
    )
    env = fake_env() | {"RAY_ADDRESS": ""}
    result = loadgen(
        "run", str(path), "--ray", "local", "--out", str(tmp_path / "out"), "--quiet", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (folder,) = (tmp_path / "out").iterdir()
    summary = RunSummary.load(folder / "summary.json")
    assert summary.total.requests == 50 and summary.total.correlation.matched == 50
    assert summary.cluster is not None and summary.cluster.address == "local"
    assert len(summary.cluster.workers) == 2 and summary.cluster.nodes == 1


def test_without_ray_exit_2_naming_the_extra(tmp_path: Path) -> None:
    path = write(tmp_path, yaml.safe_load(Path("scenarios/quickstart.yaml").read_text()))
    hide_ray = (
        "import sys; sys.modules['ray'] = None; from loadgen.cli import main; sys.exit(main())"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_ray, "run", str(path), "--ray", "local"],
        capture_output=True,
        text=True,
        timeout=60,
        env=fake_env(),
    )
    assert result.returncode == 2
    assert result.stderr == "error: cluster: Ray is not installed: pip install 'loadgen[ray]'\n"


def test_the_import_guard_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(UsageError, match=r"pip install 'loadgen\[ray\]'"):
        import_ray()


def test_an_unreachable_cluster_is_exit_3_in_one_line(tmp_path: Path) -> None:
    port = closed_port()
    path = write(tmp_path, yaml.safe_load(Path("scenarios/quickstart.yaml").read_text()))
    result = loadgen("run", str(path), "--ray", f"127.0.0.1:{port}", "--out", str(tmp_path))
    assert result.returncode == 3
    assert (
        result.stderr == f"error: cannot reach Ray cluster 127.0.0.1:{port}: Connection refused\n"
    )


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("auto", True),
        ("local", True),
        ("10.0.0.5:6379", True),
        ("ray://head.example:10001", True),
        ("[::1]:6379", True),
        ("head.example", False),
        ("http://head:6379", False),
        ("ray://head:99999", False),
    ],
)
def test_cluster_address_forms(address: str, valid: bool) -> None:
    raw = yaml.safe_load(Path("scenarios/quickstart.yaml").read_text())
    raw["cluster"] = {"engine": "ray", "address": address, "credentials": "node"}
    if valid:
        assert scenario_from_dict(raw).cluster is not None
    else:
        with pytest.raises(ScenarioError, match="cluster.address: must be auto, local"):
            scenario_from_dict(raw)


def test_validate_plan_names_the_cluster() -> None:
    raw = yaml.safe_load(Path("scenarios/quickstart.yaml").read_text())
    raw |= {"workers": "auto", "cluster": {"address": "ray://head:10001", "credentials": "node"}}
    scenario = scenario_from_dict(raw)
    lines = plan_of(scenario, resolve_region(scenario)).lines()
    assert (
        "  cluster       Ray at ray://head:10001, one CPU per worker, credentials from the node "
        "(workers: auto is the cluster's CPUs)"
    ) in lines
