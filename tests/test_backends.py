"""Tests of axq_mlperf.backends through real LoadGen runs: ONNX Runtime, OpenVINO and int8 behind one SUT.

Every run is `axq.byquery(...)` through the real kernel and the real LoadGen child, on
scikit-learn's digits (450 test images, the small CNN trained once per module) and, once
per backend, Fashion-MNIST (a 500-image slice of its test split). Accuracy is decoded from
mlperf_log_accuracy.json here, the same way for every backend, and compared with PyTorch
fp32 on the same images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import axq
from axq.entry import Entry, use_libraries
from axq.errors import BuildError, ParameterError
from axq.progress import Reporter
from axq.resolve import resolve

use_libraries()

from axq_mlperf import backends  # noqa: E402

QUIET = Reporter("quiet")
FAST = "num_threads=1,batch_size=16,loadgen_duration_s=0.3"
SERVER = "loadgen_target_qps=1000,loadgen_target_latency=50"
SCENARIOS = ["Offline", "Server", "SingleStream", "MultiStream"]
BACKENDS = ["framework=onnxruntime", "framework=openvino", "framework=pytorch,precision=int8",
            "framework=onnxruntime,precision=int8", "framework=openvino,precision=int8"]
FASHION = "loadgen_dataset_size=500"


def run(settings: str, dataset: str = "digits") -> Entry:
    """Build (or reuse) a LoadGen run on dataset: the fast settings, then `settings` over them."""
    merged = dict(item.split("=", 1) for item in f"{FAST},{settings}".split(","))
    query = ",".join([f"loadgen_output,classified_{dataset}", *(f"{k}={v}" for k, v in merged.items())])
    return axq.byquery(query, reporter=QUIET)


def decoded(entry: Entry) -> tuple[int, int]:
    """Return (good, total) decoded from the run's accuracy log against the data set's labels."""
    _, labels = entry.dep("preprocessed").call("load_arrays")
    records = json.loads((entry.path / "mlperf_log_accuracy.json").read_text())
    predicted = {r["qsl_idx"]: int(np.frombuffer(bytes.fromhex(r["data"]), "<i8")[0]) for r in records}
    return sum(int(labels[i]) == p for i, p in predicted.items()), len(predicted)


def scenario_settings(scenario: str) -> str:
    """Return the settings of a scenario's run (Server: a reachable target, a loose bound)."""
    return f"loadgen_scenario={scenario}" + (f",{SERVER}" if scenario == "Server" else "")


# ----------------------------------------------------------------------------- runs


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_scores_every_sample_in_every_scenario(collection: Path, backend: str, scenario: str) -> None:
    entry = run(f"{backend},{scenario_settings(scenario)}")
    good, total = decoded(entry)
    reference, _ = decoded(run("framework=pytorch,loadgen_scenario=Offline"))
    assert total == 450 and (entry.results["good"], entry.results["total"]) == (good, total)
    assert entry.get("accuracy") == pytest.approx(100 * good / total)
    assert good >= 0.99 * reference  # int8 keeps 99% of fp32; fp32 runtimes agree with PyTorch
    described = entry.results["sut"]["backend"]
    assert described["framework"] == entry.params["framework"].replace("onnxrt", "onnxruntime")
    assert described["precision"] == entry.params["precision"]


@pytest.mark.parametrize("backend", ["framework=onnxruntime", "framework=openvino", "framework=pytorch,precision=int8"])
def test_fashion_mnist_runs_on_every_backend(collection: Path, backend: str) -> None:
    entry = run(f"{backend},{FASHION}", "fashion_mnist")
    good, total = decoded(entry)
    reference, _ = decoded(run(f"framework=pytorch,{FASHION}", "fashion_mnist"))
    assert total == 500 and good >= 0.99 * reference and good / total > 0.8


@pytest.mark.parametrize("backend", ["framework=onnxruntime", "framework=pytorch,precision=int8",
                                     "framework=openvino,ov_hint=THROUGHPUT,ov_streams=2,num_threads=2",
                                     "framework=openvino,precision=int8"])
def test_performance_runs_are_valid_and_say_what_ran(collection: Path, backend: str) -> None:
    entry = run(f"{backend},loadgen_mode=PerformanceOnly")
    assert entry.results["result_valid"] is True and entry.get("performance") > 0
    described = entry.results["sut"]["backend"]
    assert described["precision"] == entry.params["precision"]
    assert described["num_threads"] == entry.params["num_threads"]  # OpenVINO: no more streams than threads
    if "ov_streams=2" in backend:
        assert (described["streams"], described["performance_hint"]) == (2, "THROUGHPUT")


def test_openvino_fp32_runs_fp32_and_bf16_runs_bf16_or_is_refused(collection: Path) -> None:
    """fp32 runs f32 everywhere; bf16 runs bf16 where the CPU has it, and is refused in one line where not."""
    import openvino

    model = run("framework=openvino").dep("runtime_model")
    has_bf16 = "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if not has_bf16:  # an AVX2-only CPU (CI's, this one): no silent fp32 under a bf16 label
        with pytest.raises(BuildError, match="openvino on this CPU runs fp32, not precision=bf16; use precision=fp32"):
            backends.open_backend(model, backends.Options("openvino", precision="bf16", num_threads=1))
    for precision in ("fp32", "bf16") if has_bf16 else ("fp32",):
        backend = backends.open_backend(model, backends.Options("openvino", precision=precision, num_threads=1))
        assert backend.precision == precision
        hint = str(backend.compiled.get_property("INFERENCE_PRECISION_HINT"))  # <Type: 'float32'>
        assert f"'{ {'fp32': 'float32', 'bf16': 'bfloat16'}[precision]}'" in hint


def test_onnxrt_is_axs_spelling_of_onnxruntime(collection: Path) -> None:
    spelled, canonical = run("framework=onnxrt"), run("framework=onnxruntime")
    assert spelled.dep("runtime_model").identity == canonical.dep("runtime_model").identity
    assert decoded(spelled) == decoded(canonical)


def test_pytorch_compile_pads_batches_to_compiled_sizes(collection: Path) -> None:
    entry = run("framework=pytorch,compile=true,loadgen_scenario=Server," + SERVER)
    described = entry.results["sut"]["backend"]
    assert described["compiled"] is True and described["compiled_batch_sizes"] == [1, 2, 4, 8, 16]  # Server: any size
    assert decoded(entry) == decoded(run("framework=pytorch,loadgen_scenario=Offline"))


# ----------------------------------------------------------------------------- the graph and the checks


def test_converted_models_are_entries_of_their_own_in_the_plan() -> None:
    node = resolve("loadgen_output,classified_digits,framework=openvino,precision=int8")
    model = node.deps["runtime_model"]
    assert (model.params["format"], model.params["precision"]) == ("openvino", "int8")
    fp32 = model.deps["fp32"]
    assert fp32.params["format"] == "openvino" and fp32.deps["onnx"].params["format"] == "onnx"
    assert model.deps["calibration"].params["split"] == "train" and model.deps["check"].params["split"] == "test"
    assert "runtime_model" not in resolve("loadgen_output,classified_digits,precision=bf16").deps


@pytest.mark.parametrize("settings, message", [
    ("framework=onnxruntime,precision=bf16", "framework=onnxruntime on device=cpu runs fp32 or int8"),
    ("framework=openvino,device=cuda", "framework=openvino runs on device=cpu"),
    ("framework=pytorch,precision=int8,device=cuda", "framework=pytorch on device=cuda runs fp32 or bf16 or fp16"),
    ("framework=pytorch,ov_hint=THROUGHPUT", "is a setting of framework=openvino"),
    ("framework=openvino,compile=true", "is a setting of framework=pytorch"),
    ("framework=onnxruntm", "did you mean `onnxruntime`"),
])
def test_backend_choices_are_checked_when_the_query_is_resolved(settings: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        resolve(f"loadgen_output,classified_digits,{settings}")


@pytest.mark.parametrize("framework, precision, needed", [
    ("pytorch", "fp32", None), ("pytorch", "bf16", None), ("pytorch", "int8", ("pytorch", "int8")),
    ("onnxruntime", "fp32", ("onnx", "fp32")), ("onnxrt", "int8", ("onnx", "int8")),
    ("openvino", "bf16", ("openvino", "fp32")), ("openvino", "int8", ("openvino", "int8")),
])
def test_each_run_names_the_model_format_it_needs(framework: str, precision: str, needed: tuple | None) -> None:
    assert backends.model_format(framework, precision) == needed


@pytest.mark.parametrize("batch_size, sizes", [(1, (1,)), (16, (1, 2, 4, 8, 16)), (24, (1, 2, 4, 8, 16, 24))])
def test_compiled_batch_sizes_are_powers_of_two_and_the_batch_size(batch_size: int, sizes: tuple) -> None:
    assert backends.bucket_sizes(batch_size) == sizes
