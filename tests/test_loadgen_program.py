"""Tests of entries/loadgen_program: real LoadGen runs on a tiny data set and model.

The dependency entries are stand-ins (a directory with `.path`, `.params`, `.call`) whose
recipe code lives in tmp: 200 one-hot 1 x 2 x 5 images and a linear model with identity
weights, so the model predicts the hot position. One label in four is off by one, so
exactly 150 of 200 predictions are right: accuracy 75%.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from axq.entry import load_code
from axq.errors import BuildError, GetterError

RECIPE = Path(__file__).resolve().parents[1] / "entries" / "loadgen_program"
SIZE, GOOD = 200, 150
FAST = {"loadgen_duration_s": 0.3, "num_threads": 1, "batch_size": 16}

DATA_CODE = '''
def load_arrays(entry, mmap=True):
    import numpy as np
    mode = "r" if mmap else None
    return (np.load(entry.path / "images.npy", mmap_mode=mode),
            np.load(entry.path / "labels.npy", mmap_mode=mode))
'''
MODEL_CODE = '''
import torch


class Failing(torch.nn.Module):
    def __init__(self, inner, after):
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0

    def forward(self, x):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("model blew up on purpose")
        return self.inner(x)


def load_model(entry, device="cpu"):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 10, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(10))
    after = entry.params.get("fail_after")
    return (model if after is None else Failing(model, after)).eval().to(device)
'''


class FakeEntry:
    """A built dependency as the recipe sees one: path, params, results, code(), call()."""

    def __init__(self, path: Path, params: dict | None = None) -> None:
        self.path, self.params, self.results = path, params or {}, {}

    def code(self) -> Any:
        return load_code(str(self.path / "code.py"))

    def call(self, function: str, *args: Any) -> Any:
        return getattr(self.code(), function)(self, *args)


class FakeContext:
    """A build context: params, deps, an output directory, a list of log lines."""

    def __init__(self, path: Path, params: dict, deps: dict) -> None:
        self.path, self.params, self.deps, self.lines = path, params, deps, []

    def log(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture(scope="module")
def code() -> Any:
    return load_code(str(RECIPE / "code.py"))


@pytest.fixture(scope="module")
def userconf() -> Any:
    return load_code(str(RECIPE / "userconf.py"))


@pytest.fixture(scope="module")
def dep_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Write the tiny data set and model recipe; return their directories."""
    root = tmp_path_factory.mktemp("deps")
    data, model = root / "data", root / "model"
    data.mkdir(), model.mkdir()
    hot = (np.arange(SIZE) * 3) % 10
    images = np.zeros((SIZE, 1, 2, 5), np.float32)
    images[np.arange(SIZE), 0, hot // 5, hot % 5] = 1.0
    labels = np.where(np.arange(SIZE) % 4 != 0, hot, (hot + 1) % 10).astype(np.int64)
    np.save(data / "images.npy", images)
    np.save(data / "labels.npy", labels)
    (data / "code.py").write_text(DATA_CODE)
    (model / "code.py").write_text(MODEL_CODE)
    return data, model


def run_build(code: Any, dirs: tuple[Path, Path], out: Path, model_params: dict | None = None,
              **params: Any) -> dict:
    """Build a loadgen_program entry in out with the recipe defaults under params."""
    recipe = json.loads((RECIPE / "recipe.json").read_text())
    resolved = {**recipe["defaults"], **recipe["producers"][0]["defaults"],
                **recipe["producers"][0]["params"], **FAST, **params}
    deps = {"preprocessed": FakeEntry(dirs[0]), "model": FakeEntry(dirs[1], model_params)}
    out.mkdir()
    return code.build(FakeContext(out, resolved, deps))


# ----------------------------------------------------------------------------- runs


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "MultiStream"])
def test_accuracy_run_scores_every_sample(code: Any, dep_dirs: Any, tmp_path: Path, scenario: str) -> None:
    results = run_build(code, dep_dirs, tmp_path / "out", loadgen_scenario=scenario)
    assert (results["good"], results["total"], results["accuracy"]) == (GOOD, SIZE, 75.0)
    assert results["valid"] is True and results["scenario"] == scenario
    records = json.loads((tmp_path / "out" / "mlperf_log_accuracy.json").read_text())
    assert sorted(r["qsl_idx"] for r in records) == list(range(SIZE))
    for name in ("user.conf", "mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        assert (tmp_path / "out" / name).is_file()


@pytest.mark.parametrize("scenario, metric", [
    ("Offline", "Samples per second"), ("Server", "Completed samples per second"),
    ("SingleStream", "90.0th percentile latency (ns)"), ("MultiStream", "99.0th percentile latency (ns)")])
def test_performance_run_is_valid(code: Any, dep_dirs: Any, tmp_path: Path, scenario: str, metric: str) -> None:
    results = run_build(code, dep_dirs, tmp_path / "out", loadgen_scenario=scenario,
                        loadgen_mode="PerformanceOnly")
    summary = (tmp_path / "out" / "mlperf_log_summary.txt").read_text()
    assert "Result is : VALID" in summary and results["valid"] is True
    assert results["metric"] == metric and results["performance"] > 0
    assert results["performance"] == results["summary"][metric]
    printed = summary.split(metric, 1)[1].split("\n", 1)[0]  # "    : 10091.90" (LoadGen's own text)
    assert float(printed.split(":", 1)[1]) == results["performance"]
    assert results["min_duration_met"] and results["min_queries_met"] and "accuracy" not in results


def test_multistream_queries_hold_multistreamness_samples(code: Any, dep_dirs: Any, tmp_path: Path) -> None:
    results = run_build(code, dep_dirs, tmp_path / "out", loadgen_scenario="MultiStream",
                        loadgen_mode="PerformanceOnly", loadgen_multistreamness=4)
    assert results["summary"]["samples_per_query"] == 4
    assert "resnet50" not in (tmp_path / "out" / "user.conf").read_text()


def test_query_count_and_buffer_size_reach_loadgen(code: Any, dep_dirs: Any, tmp_path: Path) -> None:
    results = run_build(code, dep_dirs, tmp_path / "out", loadgen_scenario="SingleStream",
                        loadgen_mode="PerformanceOnly", loadgen_query_count=100,
                        loadgen_buffer_size=50, loadgen_target_latency=0.05)
    summary = results["summary"]
    assert (summary["min_query_count"], summary["max_query_count"]) == (100, 100)
    assert summary["performance_sample_count"] == 50
    assert results["calibrated"] == {}


def test_too_low_target_gives_invalid_result_with_reason(code: Any, dep_dirs: Any, tmp_path: Path) -> None:
    results = run_build(code, dep_dirs, tmp_path / "out", loadgen_mode="PerformanceOnly",
                        loadgen_target_qps=20, loadgen_query_count=1)
    assert results["valid"] is False and results["result_valid"] is False
    assert "Min duration satisfied : NO" in results["invalid_reason"]
    assert "Result is : INVALID" in (tmp_path / "out" / "mlperf_log_summary.txt").read_text()


def test_model_raising_mid_run_is_a_build_error_not_a_hang(code: Any, dep_dirs: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(BuildError, match="model blew up on purpose"):
        run_build(code, dep_dirs, tmp_path / "out", {"fail_after": 5}, loadgen_mode="PerformanceOnly",
                  loadgen_target_qps=5000, loadgen_duration_s=5)
    assert time.monotonic() - started < 30


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("params, message", [
    ({"loadgen_scenario": "Ofline"}, "did you mean `Offline`"),
    ({"loadgen_mode": "AccuracyOnyl"}, "did you mean `AccuracyOnly`"),
    ({"precision": "fp16"}, "fp16 needs device=cuda"),
    ({"device": "tpu"}, "device=tpu"),
    ({"batch_size": 0}, "batch_size=0 must be an integer > 0"),
    ({"loadgen_buffer_size": SIZE + 1}, "more than the 200 samples"),
])
def test_bad_parameters_are_build_errors(code: Any, dep_dirs: Any, tmp_path: Path, params: dict,
                                         message: str) -> None:
    with pytest.raises(BuildError, match=message):
        run_build(code, dep_dirs, tmp_path / "out", **params)


# ----------------------------------------------------------------------------- user.conf


def test_user_conf_round_trips(userconf: Any, tmp_path: Path) -> None:
    settings = {"min_duration": 1500, "target_qps": 1234.5, "performance_sample_count_override": 64}
    text = userconf.render("small_cnn", "Offline", settings)
    assert "small_cnn.Offline.target_qps = 1234.5\n" in text
    path = tmp_path / "user.conf"
    path.write_text(text)
    userconf.check(path, "small_cnn", "Offline", settings)


@pytest.mark.parametrize("line", [
    "small_cnn.Offline.min_duration=1000",
    "small_cnn.Offline.min_duration = 1000 # one second",
    "small_cnn.Offline.min_duration = fast",
    "Offline.min_duration = 1000",
])
def test_user_conf_lines_loadgen_would_mishandle_are_rejected(userconf: Any, line: str) -> None:
    with pytest.raises(userconf.UserConfError):
        userconf.parse(line + "\n")


def test_user_conf_check_catches_a_different_value(userconf: Any, tmp_path: Path) -> None:
    path = tmp_path / "user.conf"
    path.write_text("m.Server.target_qps = 10\n")
    with pytest.raises(userconf.UserConfError, match="expected 20"):
        userconf.check(path, "m", "Server", {"target_qps": 20})
    with pytest.raises(userconf.UserConfError, match=r"not a user\.conf key for Offline"):
        userconf.render("m", "Offline", {"target_latency": 5})


# ----------------------------------------------------------------------------- getters

ACCURACY = {"scenario": "Offline", "mode": "AccuracyOnly", "accuracy": 98.2222, "good": 442,
            "total": 450, "result_valid": True, "valid": True, "summary": {"Scenario": "Offline"}}
PERFORMANCE = {"scenario": "Server", "mode": "PerformanceOnly", "result_valid": False, "valid": False,
               "metric": "Completed samples per second", "performance": 950.5, "unit": "samples/s",
               "min_duration_met": True, "min_queries_met": True, "early_stopping_met": False,
               "summary": {"target_qps": 1000, "Result is": "INVALID"}}


def test_accuracy_getters(code: Any) -> None:
    entry = SimpleNamespace(results=ACCURACY)
    assert code.accuracy(entry) == 98.2222
    assert code.accuracy_report(entry) == "accuracy=98.222%, good=442, total=450"
    assert code.result_valid(entry) is True and code.summary(entry) == {"Scenario": "Offline"}
    with pytest.raises(GetterError, match="loadgen_mode=PerformanceOnly"):
        code.performance(entry)


def test_performance_getters(code: Any) -> None:
    entry = SimpleNamespace(results=PERFORMANCE)
    assert code.performance(entry) == 950.5
    assert code.performance_report(entry) == (
        "INVALID, Server: Completed samples per second = 950.5 samples/s, target 1000 QPS, "
        "min_duration_met=yes, min_queries_met=yes, early_stopping_met=NO")
    with pytest.raises(GetterError, match="loadgen_mode=AccuracyOnly"):
        code.accuracy_report(entry)


def test_short_offline_run_gets_a_sample_floor_and_stays_valid(code: Any, dep_dirs: Any, tmp_path: Path) -> None:
    results = run_build(code, dep_dirs, tmp_path / "out", loadgen_mode="PerformanceOnly",
                        loadgen_target_qps=20)
    floor = results["calibrated"]["min_query_count"]
    assert results["valid"] is True and results["min_duration_met"] is True
    assert floor > 22  # more than LoadGen's 1.1 x 1 s x 20 QPS would issue
    assert results["summary"]["samples_per_query"] == floor  # LoadGen: max(floor, 1.1 x 1 s x 20)


def test_harness_baseline_times_the_bare_model_in_the_test_process(code: Any, dep_dirs: Any, tmp_path: Path) -> None:
    results = run_build(code, dep_dirs, tmp_path / "out", loadgen_mode="PerformanceOnly", harness_baseline_s=0.2)
    sut = results["sut"]
    assert len(sut["bare_runs_samples_per_s"]) == 3 and min(sut["bare_runs_samples_per_s"]) > 0
    assert sut["harness_efficiency"] == round(results["performance"] / sut["bare_samples_per_s"], 4)
    assert 0 < sut["sut_busy_s"] <= sut["test_wall_s"]
    assert sut["samples"] >= results["summary"]["samples_per_query"]


# ----------------------------------------------------------------------------- valid runs, compliance

OFFICIAL_SEEDS = (2085463073848966840, 2747215439041700203, 16159082839903944936)  # wheel 6.0.17's mlperf.conf
LOAD_SETTINGS = '''
import json, sys
import mlperf_loadgen as lg
s = lg.TestSettings()
assert s.FromConfig(sys.argv[1], sys.argv[2], sys.argv[3]) == 0
print(json.dumps([s.min_duration_ms, s.min_query_count, s.qsl_rng_seed, s.sample_index_rng_seed,
                  s.schedule_rng_seed, s.performance_sample_count_override, s.offline_expected_qps]))
'''


def resolved(**params: Any) -> dict:
    """Return the recipe's resolved parameters for digits with params on top."""
    recipe = json.loads((RECIPE / "recipe.json").read_text())
    producer = recipe["producers"][0]
    return {**recipe["defaults"], **producer["defaults"], **producer["params"], **params}


def loadgen_settings(conf: Path, model: str, scenario: str) -> list:
    """Return what LoadGen makes of mlperf.conf plus this user.conf, in a fresh process."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", LOAD_SETTINGS, str(conf), model, scenario],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


@pytest.mark.parametrize("model, size, count", [("small_cnn", 450, 450), ("resnet50", 50_000, 1024)])
def test_valid_run_keeps_mlperf_conf_durations_and_seeds(code: Any, tmp_path: Path, model: str, size: int,
                                                         count: int) -> None:
    params = resolved(loadgen_execution="valid", loadgen_mode="PerformanceOnly", loadgen_target_qps=500,
                      model_name=model)
    settings, calibrate = code.conf_plan(params, size)
    assert settings == {"performance_sample_count_override": count, "target_qps": 500} and calibrate == []
    code.write_user_conf(tmp_path / "user.conf", params, settings)
    minimum = 24576 if model == "resnet50" else 100  # mlperf.conf: resnet50.Offline.min_query_count, *.*
    assert loadgen_settings(tmp_path / "user.conf", model, "Offline") == [600000, minimum, *OFFICIAL_SEEDS,
                                                                         count, 500.0]


def test_valid_run_times_missing_targets_and_leaves_resnet50_server_latency_to_mlperf_conf(code: Any) -> None:
    params = resolved(loadgen_execution="valid", loadgen_scenario="Server", model_name="resnet50")
    assert code.conf_plan(params, 50_000) == ({"performance_sample_count_override": 1024}, ["target_qps"])
    params["model_name"] = "small_cnn"
    assert code.conf_plan(params, 450)[1] == ["target_qps", "target_latency"]


@pytest.mark.parametrize("params, message", [
    ({"loadgen_execution": "valid", "loadgen_duration_s": 5}, "loadgen_duration_s=5 shortens the run"),
    ({"loadgen_execution": "valid", "loadgen_duration_s": None, "loadgen_query_count": 10},
     "loadgen_query_count=10 shortens the run"),
    ({"loadgen_execution": "official"}, "loadgen_execution=official is not known"),
    ({"loadgen_compliance_test": "TEST05"}, "loadgen_compliance_test=TEST05 is not known"),
    ({"loadgen_compliance_test": "TEST01"}, "runs in PerformanceOnly mode"),
])
def test_non_compliant_parameters_are_build_errors(code: Any, params: dict, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        code.check_params(resolved(**params))


def test_compliance_result_getter(code: Any) -> None:
    entry = SimpleNamespace(results={**PERFORMANCE, "compliance": {"test": "TEST04", "result": "PASS"}})
    assert code.compliance_result(entry) == "PASS"
    with pytest.raises(GetterError, match="loadgen_compliance_test=TEST01"):
        code.compliance_result(SimpleNamespace(results=PERFORMANCE))
