"""The tunable SUT on the real digits chain and the real LoadGen: instances pinned to cores,
the per-sample latency breakdown, warm-up batches, profiles, and how valid runs are sized."""

from __future__ import annotations

import json
import os
import queue
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import axq
from axq.entry import Entry, use_libraries
from axq.errors import BuildError, GetterError
from axq.progress import Reporter
from tests.conftest import REPO

use_libraries()  # axq_mlperf, as recipe code imports it

from axq_mlperf import backends, breakdown  # noqa: E402
from axq_mlperf.config import HarnessConfig  # noqa: E402

sys.path.insert(0, str(REPO / "entries" / "loadgen_program"))
import harness  # noqa: E402

DIGITS = "loadgen_output,classified_digits,framework=pytorch,batch_size=16"
QUIET = Reporter("quiet")
CORES = len(os.sched_getaffinity(0))


def run(settings: str) -> Entry:
    """Build (or reuse) a digits LoadGen run with these settings."""
    return axq.byquery(f"{DIGITS},{settings}", reporter=QUIET)


# ----------------------------------------------------------------------------- instances


@pytest.mark.skipif(CORES < 2, reason="two pinned instances need two cores")  # CI and these machines have 2
def test_two_pinned_instances_score_as_one_does_on_disjoint_cores(collection: Path) -> None:
    one = run("loadgen_mode=AccuracyOnly,num_instances=1")
    two = run("loadgen_mode=AccuracyOnly,num_instances=2")
    assert (two.results["good"], two.results["total"]) == (one.results["good"], one.results["total"])
    instances = two.results["sut"]["instances"]
    assert [i["instance"] for i in instances] == [0, 1]
    assert all(i["pinned"] and len(i["cores"]) == 1 and i["num_threads"] == 1 for i in instances)
    assert not set(instances[0]["cores"]) & set(instances[1]["cores"])
    assert sum(i["samples"] for i in instances) == two.results["total"]


@pytest.mark.skipif(CORES < 2, reason="two pinned instances need two cores")
@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_every_instance_takes_batches_in_a_performance_run(collection: Path, scenario: str) -> None:
    server = ",loadgen_target_qps=1000,loadgen_target_latency=50" if scenario == "Server" else ""
    entry = run(f"loadgen_mode=PerformanceOnly,loadgen_scenario={scenario},num_instances=2,"
                f"loadgen_duration_s=0.5{server}")
    assert entry.results["result_valid"], entry.results.get("invalid_reason")
    instances = entry.results["sut"]["instances"]
    assert len(instances) == 2 and all(i["batches"] > 0 for i in instances)
    assert sum(i["samples"] for i in instances) == entry.results["sut"]["samples"]


@pytest.mark.skipif(CORES < 2, reason="two pinned instances need two cores")
def test_pinned_openvino_instances_keep_to_their_cores(collection: Path) -> None:
    # OpenVINO's own pinning put both instances on the first one's core (half the speed of
    # one instance); pinned by axq, OpenVINO's threads are left on the instance's cores.
    query = DIGITS.replace("framework=pytorch", "framework=openvino") + ",loadgen_mode=AccuracyOnly"
    one = axq.byquery(query, reporter=QUIET)
    two = axq.byquery(f"{query},num_instances=2", reporter=QUIET)
    assert (two.results["good"], two.results["total"]) == (one.results["good"], one.results["total"])
    assert two.results["sut"]["backend"]["cpu_pinning"] is False
    instances = two.results["sut"]["instances"]
    assert all(i["pinned"] and i["samples"] > 0 for i in instances)
    assert not set(instances[0]["cores"]) & set(instances[1]["cores"])


@pytest.mark.skipif(CORES < 2, reason="two pinned instances need two cores")
def test_process_instances_score_as_a_thread_does_each_in_its_own_process(collection: Path) -> None:
    one = run("loadgen_mode=AccuracyOnly")
    two = run("loadgen_mode=AccuracyOnly,num_instances=2,instance_kind=process")
    assert (two.results["good"], two.results["total"]) == (one.results["good"], one.results["total"])
    instances = two.results["sut"]["instances"]
    assert [i["kind"] for i in instances] == ["process", "process"]
    assert len({i["process"] for i in instances} | {one.results["sut"]["instances"][0]["process"]}) == 3
    assert all(i["pinned"] and i["samples"] > 0 for i in instances)
    assert not set(instances[0]["cores"]) & set(instances[1]["cores"])
    assert two.results["sut"]["backend"]["process_cores"] == instances[0]["cores"]  # inherited from its thread


@pytest.mark.skipif(CORES < 2, reason="two pinned instances need two cores")
def test_process_instances_make_a_valid_performance_run_with_a_breakdown(collection: Path) -> None:
    entry = run("loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,num_instances=2,instance_kind=process,"
                "loadgen_duration_s=0.5")
    assert entry.results["result_valid"], entry.results.get("invalid_reason")
    assert all(i["batches"] > 0 for i in entry.results["sut"]["instances"])
    found = entry.get("latency_breakdown")
    assert found["samples"] == entry.results["sut"]["samples"] and 0 < found["harness_share"] < 1


def test_an_instance_process_that_cannot_open_its_model_says_why_and_ends(tmp_path: Path) -> None:
    from axq_mlperf import backends, remote

    with pytest.raises(BuildError, match="no-such-model"):
        remote.RemoteBackend(str(tmp_path / "no-such-model"), backends.Options(framework="pytorch"))


def test_an_instance_process_ends_when_the_sut_closes_it(collection: Path) -> None:
    from axq_mlperf import backends, remote

    entry = run("loadgen_mode=AccuracyOnly")
    config = json.loads((entry.path / "config.json").read_text())
    backend = backends.open_backend(Entry.at(config["model"]), backends.Options(framework="pytorch", process=True))
    assert isinstance(backend, remote.RemoteBackend)
    backend.hold(np.zeros((3, 1, 8, 8), dtype=np.float32))
    assert backend.predict(np.array([0, 2])).shape == (2,) and backend.describe()["process"] == backend.process.pid
    backend.close()
    assert backend.process.returncode == 0


def test_more_instances_than_cores_is_a_clear_build_error(collection: Path) -> None:
    with pytest.raises(BuildError, match=rf"num_instances={CORES + 1} x 1 threads needs {CORES + 1} cores"):
        run(f"loadgen_mode=AccuracyOnly,num_instances={CORES + 1},num_threads=1")


def test_unpinned_instances_run_on_every_core_and_threads_per_instance_is_num_threads(collection: Path) -> None:
    entry = run("loadgen_mode=AccuracyOnly,num_instances=2,pin_cores=false,threads_per_instance=1")
    assert entry.params["num_threads"] == 1
    instances = entry.results["sut"]["instances"]
    assert all(not i["pinned"] and len(i["cores"]) == CORES for i in instances)


def test_cores_are_split_evenly_with_smt_siblings_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(harness, "cpu_order", lambda cpus: [0, 2, 1, 3])  # 0 and 2 are one core's siblings
    assert harness.instance_cores(2, None, True) == (2, [[0, 2], [1, 3]])
    assert harness.instance_cores(4, None, False) == (1, [None] * 4)
    assert harness.instance_cores(1, None, True) == (None, [None])  # the runtime's own choice


def test_a_slab_hands_out_blocks_of_whole_batches_that_shrink_as_it_empties() -> None:
    count = 70_000
    slab = harness.Slab(0, list(range(10**9, 10**9 + count)), list(range(count)), 32)
    blocks = list(iter(slab.take, None))
    sizes = [len(block.ids) for block in blocks]
    assert sum(sizes) == count and max(sizes) == harness.BLOCK_SAMPLES
    assert all(size % 32 == 0 for size in sizes[:-1]) and sizes[-1] <= 32
    assert sizes == sorted(sizes, reverse=True) and sizes[-2] == 32  # guided: the last blocks a batch each
    assert blocks[0].ids.dtype == np.uint64 and blocks[0].indices.tolist() == list(range(sizes[0]))


def test_an_issue_call_larger_than_a_batch_reaches_the_instances_once_per_sample_in_blocks() -> None:
    # Offline's one query: two instances alternate taking blocks of it; every sample comes out
    # exactly once, in blocks of whole batches, and the queue ends empty. A call that fits a
    # batch (Server's, the streams') is one chunk.
    sut = SimpleNamespace(queue=queue.SimpleQueue(), batch_size=32, max_wait_s=None, completion="auto")
    harness.Sut.issue(sut, [7, 8], [0, 1])
    chunk = sut.queue.get()
    assert isinstance(chunk, harness.Chunk) and chunk.ids == [7, 8] and sut.queue.empty()
    count = 5000
    harness.Sut.issue(sut, list(range(10**9, 10**9 + count)), list(range(count)))
    options = backends.Options(framework="pytorch")
    instances = [harness.Instance(number, None, options, "", np.zeros((count, 1)), sut) for number in range(2)]
    seen: list[int] = []
    active, ended, taken = list(instances), False, [0, 0]
    while active:
        for instance in list(active):
            block = instance.next_work()
            if block is None:
                active.remove(instance)
                continue
            assert isinstance(block, harness.Chunk)
            assert (block.ids.astype(np.int64) - 10**9).tolist() == block.indices.tolist()
            assert len(block.ids) % 32 == 0 or len(seen) + len(block.ids) == count
            seen.extend(block.indices.tolist())
            taken[instance.number] += 1
            if len(seen) == count and not ended:  # the end, as Sut.stop puts it: one per instance
                sut.queue.put(None)
                sut.queue.put(None)
                ended = True
    assert sorted(seen) == list(range(count)) and all(taken[number] > 1 for number in (0, 1))
    assert sut.queue.empty()


class Recorded:
    """Responses that record what the SUT holds, puts and sends (LoadGen's call needs a real test)."""

    def __init__(self) -> None:
        self.held: list[int] = []
        self.slots: dict[int, int] = {}
        self.sent: list[tuple[int, int]] = []

    def hold(self, ids: np.ndarray) -> None:
        self.held = ids.tolist()

    def put(self, start: int, predictions: np.ndarray, indices: Any = None) -> None:
        self.slots.update(zip(range(start, start + len(predictions)), predictions.tolist(), strict=True))

    def send(self, start: int, count: int) -> None:
        self.sent.append((start, count))


def test_a_block_is_answered_in_batches_each_sent_as_its_own_run_of_responses() -> None:
    sut = SimpleNamespace(queue=queue.SimpleQueue(), batch_size=32, max_wait_s=None, completion="auto")
    instance = harness.Instance(0, None, backends.Options(framework="pytorch"), "", np.zeros((200, 1)), sut)
    instance.rows[:] = np.arange(200) + 1000  # data set index i is held in row 1000 + i
    instance.backend = SimpleNamespace(predict=lambda rows: rows * 10)
    instance.responses = responses = Recorded()
    block = harness.Chunk(5, np.arange(500, 570, dtype=np.uint64), np.arange(100, 170))
    instance.answer_block(block)
    assert responses.held == list(range(500, 570))
    assert responses.sent == [(0, 32), (32, 32), (64, 6)]
    assert responses.slots == {i: (1100 + i) * 10 for i in range(70)}  # each slot its own sample's answer
    assert instance.records.chunks == [(5, 32, 0), (5, 32, 1), (5, 6, 2)] and instance.records.samples() == 70
    assert all(began <= inferred <= sent <= done for began, inferred, sent, done in instance.records.batches)


# ----------------------------------------------------------------------------- latency breakdown


@pytest.mark.parametrize("scenario", ["Offline", "SingleStream"])
def test_latency_breakdown_sums_to_the_end_to_end_latency(collection: Path, scenario: str) -> None:
    entry = run(f"loadgen_mode=PerformanceOnly,loadgen_scenario={scenario},loadgen_duration_s=0.5")
    found = entry.get("latency_breakdown")
    parts = sum(found[f"{name}_ms"]["mean"] for name in ("queue", "inference", "response"))
    end_to_end = found["end_to_end_ms"]["mean"]
    assert parts == pytest.approx(end_to_end, rel=0.01)
    assert found["samples"] == entry.results["sut"]["samples"]
    for name in breakdown.PARTS:
        stats = found[f"{name}_ms"]
        assert 0 <= stats["p50"] <= stats["p90"] <= stats["p99"]
    assert 0 < found["harness_share"] < 1 and found["harness_us_per_batch"] > 0
    assert found["harness_own_share"] + found["loadgen_call_share"] == pytest.approx(found["harness_share"], abs=1e-4)
    if scenario == "Offline":  # latencies of seconds: the SUT's clock and LoadGen's agree closely
        assert end_to_end == pytest.approx(found["loadgen_mean_ms"], rel=0.01)
    raw = np.load(entry.path / "latency_breakdown.npz")
    assert int(raw["chunks"][:, 2].sum()) == found["samples"] and len(raw["batches"]) == found["batches"]


def test_breakdown_of_known_times() -> None:
    # One instance, two batches: samples 0-1 issued at 0 and run 10-20, sent 22, done 25; sample 2
    # issued at 5, run 25-45 (ready at 25, when the instance was free), sent 46, done 50.
    ms = 1_000_000
    batches = np.array([[0, 10 * ms, 20 * ms, 22 * ms, 25 * ms], [0, 25 * ms, 45 * ms, 46 * ms, 50 * ms]])
    chunks = np.array([[0, 0, 2, 0], [0, 5 * ms, 1, 1]])  # (instance, issued, samples, batch)
    found = breakdown.summarise(batches, chunks)
    assert found["queue_ms"]["mean"] == pytest.approx((10 + 10 + 20) / 3)
    assert found["inference_ms"]["mean"] == pytest.approx((10 + 10 + 20) / 3)
    assert found["response_ms"]["mean"] == pytest.approx((5 + 5 + 5) / 3)
    assert found["end_to_end_ms"]["mean"] == pytest.approx((25 + 25 + 45) / 3)
    # harness: batch 1 waited 10 from ready (0) and responded 5; batch 2 started when ready, responded 5
    assert found["harness_share"] == pytest.approx(20 / 50)
    assert found["loadgen_call_share"] == pytest.approx((3 + 4) / 50)
    assert found["harness_own_share"] == pytest.approx((20 - 7) / 50)
    assert found["harness_us_per_batch"] == pytest.approx(10 * 1000)


def test_a_run_built_before_the_breakdown_says_so(collection: Path) -> None:
    entry = run("loadgen_mode=AccuracyOnly")
    del entry.results["latency_breakdown"]
    with pytest.raises(GetterError, match="no latency breakdown"):
        entry.getter("latency_breakdown")(entry)


# ----------------------------------------------------------------------------- warm-up, profile


def test_warmup_batches_reach_the_child(collection: Path) -> None:
    entry = run("loadgen_mode=AccuracyOnly,warmup_batches=0")
    assert HarnessConfig.read(entry.path / "config.json").warmup_batches == 0
    assert entry.results["good"] > 0


@pytest.mark.parametrize(("framework", "files"), [
    ("pytorch", ["torch_trace.json", "torch_operators.txt"]),
    ("onnxruntime", ["onnxruntime"]),
    ("openvino", ["openvino_layers.json"]),
])
def test_profile_saves_the_runtime_profile_in_the_entry(collection: Path, framework: str, files: list[str]) -> None:
    query = (f"loadgen_output,classified_digits,framework={framework},batch_size=16,loadgen_mode=PerformanceOnly,"
             "loadgen_duration_s=0.3,profile=true")
    paths = [Path(p) for p in axq.byquery(query, reporter=QUIET).get("profile_files")]
    assert [p.name.startswith(prefix) for p, prefix in zip(paths, files, strict=True)] == [True] * len(files)
    assert all(p.is_file() and p.stat().st_size > 100 and p.parent.name == "profile" for p in paths)
    if framework == "pytorch":
        assert "traceEvents" in json.loads(paths[0].read_text())
    if framework == "openvino":
        layers = json.loads(paths[0].read_text())["per_batch"]
        assert layers and layers[0]["real_time_us"] >= layers[-1]["real_time_us"]


def test_a_run_without_profile_has_none(collection: Path) -> None:
    with pytest.raises(GetterError, match="profile=true"):
        run("loadgen_mode=AccuracyOnly").get("profile_files")


# ----------------------------------------------------------------------------- valid runs


def test_a_valid_offline_run_is_aimed_to_last_600_to_700_seconds() -> None:
    config = HarnessConfig(user_conf={}, calibrate=("target_qps",), buffer_size=450, min_queries=1, preprocessed="",
                           model="", backend=backends.Options("pytorch", batch_size=32), loadgen_scenario="Offline",
                           loadgen_mode="PerformanceOnly", model_name="small_cnn", loadgen_execution="valid")
    timed = 20_000.0
    target = harness.offline_targets(config, timed, harness.VALID_MARGIN)["target_qps"]
    for kept in harness.VALID_KEPT:  # a long run is slower than the 10 s timing test, as measured
        lasts = 1.1 * 600 * target / (kept * timed)  # LoadGen issues 1.1 x min_duration x target_qps samples
        assert 600 <= lasts <= 700, kept
    assert harness.VALID_TIMING_S >= 10  # timed long enough for a warm process's speed
    short = harness.offline_targets(config, timed)["target_qps"]
    assert short == harness.MARGIN * timed  # a test run keeps its margin
