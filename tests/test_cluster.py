"""Sweeps on a Ray cluster: a head and two worker nodes on this machine, each with its own work collection.

Every node is bound to 127.0.0.1 with the dashboard off; node a and node b simulate two
machines (AXQ_TEST_SYSTEM, advertised as `axq_system:machine-a` / `-b`), each with its own
work collection and measurement lock. The toy `system_point` recipe is fast and
deterministic; a point can block at a FIFO gate, so the tests know when it is running.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray

import axq
from axq import cluster
from axq.errors import UsageError
from axq.progress import Reporter
from axq.resolve import resolve

from .conftest import REPO, TOY_RECIPES, keep

NODES = ("a", "b")
TIMEOUT = 90  # seconds: far more than any of these sweeps needs


@dataclass
class RunningCluster:
    """The running cluster, its nodes by name and their folders."""

    cluster: Any
    nodes: dict[str, Any]
    root: Path

    def add(self, name: str) -> None:
        """Start node `name` (again): one CPU, its own collection, lock and simulated machine."""
        folder = self.root / name
        env = {cluster.NODE_COLLECTION: str(folder / "wc"), "AXQ_MEASURE_LOCK": str(folder / "measure.lock"),
               "AXQ_TEST_SYSTEM": f"machine-{name}"}
        resources = {cluster.machine_resource("system", f"machine-{name}"): 1}
        self.nodes[name] = node = self.cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1",
                                                        include_dashboard=False, env_vars=env, resources=resources)
        keep(info.process.pid for infos in node.all_processes.values() for info in infos)  # the module's to stop

    def node_of(self, pid: int) -> str:
        """Return the name of the node whose raylet started worker `pid`."""
        with open(f"/proc/{pid}/stat") as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        return next(n for n, node in self.nodes.items() if node.all_processes["raylet"][0].process.pid == parent)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """Start a head (no CPUs: it runs no point) and nodes a and b; shut them down after the module."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    patch = pytest.MonkeyPatch()
    patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # connect over loopback: this sandbox's own IP is not
    head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                         "include_dashboard": False})
    running = RunningCluster(head, {}, tmp_path_factory.mktemp("cluster"))
    try:
        for name in NODES:
            running.add(name)
        head.wait_for_nodes()
        schedulable(head.address)
        patch.setenv("RAY_ADDRESS", head.address)
        yield running
    finally:
        if ray.is_initialized():
            ray.shutdown()
        head.shutdown()
        patch.undo()


def schedulable(address: str) -> None:
    """Wait (bounded) until a task pinned to each node has run there: the scheduler then knows both.

    Registered nodes reach the scheduler's resource view a moment later; Ray's SPREAD is best
    effort, and a sweep sent before node a is in that view runs all its points on node b.
    """
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        where = ray.remote(lambda: os.environ["AXQ_TEST_SYSTEM"])
        pinned = [where.options(num_cpus=1, resources={cluster.machine_resource("system", f"machine-{n}"): 1}).remote()
                  for n in NODES]
        assert ray.get(pinned, timeout=TIMEOUT) == [f"machine-{n}" for n in NODES]
    finally:
        ray.shutdown()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """Make a gate folder (FIFOs `started` and `release`) with `started` open for reading; yield both."""
    folder = tmp_path / "gate"
    folder.mkdir()
    os.mkfifo(folder / "started")
    os.mkfifo(folder / "release")
    reader = os.open(folder / "started", os.O_RDONLY | os.O_NONBLOCK)
    yield folder, reader
    os.close(reader)


def blocked_pid(reader: int) -> int:
    """Wait (bounded) until a build says through the gate that it is blocked there; return its pid."""
    ready, _, _ = select.select([reader], [], [], TIMEOUT)
    assert ready, "no point reached the gate"
    return int(os.read(reader, 100).decode().split()[0])


def wait_gone(pid: int) -> bool:
    """Wait (bounded) for a process that is not our child to end."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    ready, _, _ = select.select([handle], [], [], TIMEOUT)
    os.close(handle)
    return bool(ready)


def sweep(query: str, getters: str = "doubled,measured_on", **kwargs: Any) -> tuple[list[dict], list[str]]:
    """Run a sweep on the cluster; return its rows and the progress lines."""
    lines: list[str] = []
    reporter = Reporter("quiet")
    reporter.log = lines.append  # type: ignore[method-assign]
    return axq.sweep(query, getters, reporter=reporter, executor=cluster.Ray(), **kwargs), lines


def test_four_points_run_on_both_nodes_and_are_imported_here(ray_cluster: RunningCluster, work: Path) -> None:
    rows, lines = sweep("system_point,value:=1:2:3:4")
    assert [r["value"] for r in rows] == [1, 2, 3, 4] and all(r["error"] is None for r in rows)
    assert {r["measured_on"] for r in rows} == {"machine-a", "machine-b"}
    assert len({r["node"] for r in rows}) == 2 and "points per node: " in lines[-1]
    for row in rows:
        entry = axq.byname(row["entry"])
        assert entry.get("doubled") == row["doubled"] == 2 * row["value"] + 1
        assert entry.results["measure_lock"] == str(ray_cluster.root / row["measured_on"][-1] / "measure.lock")
    assert axq.stale_reasons(axq.list_entries()) == {}
    for name in NODES:
        assert list((ray_cluster.root / name / "wc").glob("toy_system_system_point_*"))
    again, lines = sweep("system_point,value:=1:2:3:4")
    assert [r["node"] for r in again] == ["here"] * 4 and lines[-1].endswith("points per node: here 4")
    assert [r["entry"] for r in again] == [r["entry"] for r in rows]


def test_points_cached_here_are_not_sent(ray_cluster: RunningCluster, work: Path) -> None:
    local = axq.byquery("system_point,value=5")
    rows, _ = sweep("system_point,value:=5:6")
    assert rows[0]["node"] == "here" and rows[0]["entry"] == local.name
    assert rows[0]["measured_on"] == local.params["system"] and rows[1]["measured_on"].startswith("machine-")


def test_a_pinned_system_runs_on_that_machine_only(ray_cluster: RunningCluster, work: Path) -> None:
    rows, _ = sweep("system_point,value:=7:8:9,system=machine-b")
    assert [r["measured_on"] for r in rows] == ["machine-b"] * 3
    assert len({r["node"] for r in rows}) == 1


def test_a_failed_point_is_a_row_with_the_nodes_log_here(ray_cluster: RunningCluster, work: Path) -> None:
    rows, _ = sweep("system_point,value=10,fail:=false:true")
    assert rows[0]["error"] is None and rows[1]["entry"] is None
    assert "asked to fail" in rows[1]["error"] and "(on " in rows[1]["error"]
    log = Path(rows[1]["log"])
    assert log.parent == work / ".logs" and "FAILED: BuildError" in log.read_text()


def test_a_point_whose_node_dies_is_retried_elsewhere(ray_cluster: RunningCluster, work: Path, gate) -> None:
    folder, reader = gate
    done: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: done.update(rows=sweep(
        f"system_point,value:=21:22:23:24,gate_dir={folder},block_value=22")[0]))
    runner.start()
    pid = blocked_pid(reader)
    dying = ray_cluster.node_of(pid)
    ray_cluster.cluster.remove_node(ray_cluster.nodes.pop(dying), allow_graceful=False)
    with contextlib.suppress(ProcessLookupError):  # its raylet is gone; make sure the worker is too
        os.kill(pid, signal.SIGKILL)
    runner.join(TIMEOUT)
    try:
        assert not runner.is_alive(), "the sweep did not finish after its node died"
        rows = done["rows"]
        assert [r["error"] for r in rows] == [None] * 4
        survivor = next(n for n in NODES if n != dying)
        assert rows[1]["measured_on"] == f"machine-{survivor}"
    finally:
        ray_cluster.add(dying)
        ray_cluster.cluster.wait_for_nodes()


def test_ctrl_c_cancels_the_remote_points_and_a_rerun_resumes(ray_cluster: RunningCluster, work: Path, gate) -> None:
    folder, reader = gate
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # the driver connects over loopback, as above
    args = [sys.executable, "-m", "axq", "sweep", f"system_point,value:=31:32,gate_dir={folder},block_value=31",
            ",", "get", "doubled", "--on=ray", "--json"]
    driver = subprocess.Popen(args, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = blocked_pid(reader)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=TIMEOUT)
    assert driver.returncode == 130 and "interrupted" in err, err
    assert wait_gone(pid), "the blocked point's worker was not cancelled"
    rerun = subprocess.run(args, cwd=REPO, env=env, text=True, capture_output=True, timeout=TIMEOUT, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert [r["doubled"] for r in json.loads(rerun.stdout)] == [63, 65]


def test_an_exploration_on_the_cluster_scores_as_one_here(ray_cluster: RunningCluster, work: Path,
                                                          tmp_path: Path) -> None:
    from axq.exploration import explore

    grid = "explored,framework:=alpha:beta,precision:=fp32:bf16:fp16"
    rows = explore(grid, reporter=Reporter("quiet"), executor=cluster.Ray())
    local = explore(grid, work_collection=tmp_path / "local", reporter=Reporter("quiet"))
    figures = ("accuracy", "performance", "ratio", "valid", "pareto", "meets_target", "skipped", "error")
    assert [{k: r[k] for k in figures} for r in rows] == [{k: r[k] for k in figures} for r in local]
    scored = [r for r in rows if not r["skipped"]]
    assert scored and all(r["node"] != "here" for r in scored)
    assert all(axq.byname(r["performance_entry"]).path.is_dir() for r in scored)
    again = explore(grid, reporter=Reporter("quiet"), executor=cluster.Ray())
    assert [r["node"] for r in again] == ["here"] * len(rows)


def test_what_a_point_asks_of_the_cluster(work: Path) -> None:
    plain = resolve("system_point,value=1")
    assert cluster.point_options(plain) == {"num_cpus": 1, "max_retries": 1, "retry_exceptions": False,
                                            "scheduling_strategy": "SPREAD"}
    pinned = cluster.point_options(resolve("system_point,value=1,system=machine-b"))
    assert pinned["resources"] == {"axq_system:machine-b": 0.001}
    from axq.graph import Node

    on_gpu = Node(plain.producer, {**plain.params, "device": "cuda:1"}, plain.query, sources=plain.sources)
    assert cluster.point_options(on_gpu)["num_gpus"] == 1
    # the recipe says what a point needs (its "resources" hook): the kernel knows no device names
    run = resolve("loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly")
    assert "num_gpus" not in cluster.point_options(run)
    on_cuda = Node(run.producer, {**run.params, "device": "cuda"}, run.query, sources=run.sources)
    assert cluster.point_options(on_cuda)["num_gpus"] == 1
    assert "resources" not in cluster.point_options(run)  # `system` is computed here, not pinned


def test_nodes_advertise_their_fingerprint(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from axq.recipe import forget_computed_defaults

    monkeypatch.setenv("AXQ_TEST_SYSTEM", "machine-q")
    forget_computed_defaults()
    from axq_mlperf import system

    # every value the recipes compute from the machine: the toys' simulated ones and the LoadGen runs' real one
    real = system.fingerprint()
    expected = {"axq_system:machine-q": 1.0, f"axq_system:{real}": 1.0, "axq_machine:machine-a": 1.0,
                f"axq_measuring_system:{real}": 1.0}
    assert cluster.system_resources() == expected
    printed = subprocess.run([sys.executable, "-m", "axq.cluster", "resources"], cwd=REPO, text=True,
                             capture_output=True, check=True, env={**os.environ, "AXQ_ENTRIES": str(TOY_RECIPES)})
    assert json.loads(printed.stdout) == expected


@pytest.mark.parametrize(("on", "expected"), [("ray", None), ("ray://head:10001", "ray://head:10001")])
def test_where_on_points(on: str, expected: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster.address_of(on) == expected
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster.address_of(on) == (expected or "10.0.0.1:6379")


def test_a_bad_on_is_one_line_exit_2(work: Path, axq_cli) -> None:
    with pytest.raises(UsageError, match="expected `ray`"):
        cluster.address_of("spark")
    code, _, err = axq_cli("sweep", "system_point,value:=1:2", ",", "get", "doubled", "--on=spark")
    assert code == 2 and "expected `ray`" in err and err.count("\n") == 1
