"""MLPerf submission pieces (entries/lib/axq_mlperf): compliance audits, accuracy-log truncation, checker layout.

Every benchmark run here is real LoadGen driving a tiny in-test SUT, one subprocess per
run (LoadGen reads mlperf.conf once per process and audit.config from the working
directory). Run as a script, this file is that subprocess: `python THIS RUN_DIR SUT MODE`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import pytest

TOTAL_SAMPLES = 400
BUSY_S = 0.001  # the honest SUT's fixed work per sample
USER_CONF = """\
*.SingleStream.min_duration = 300
*.SingleStream.min_query_count = 100
*.SingleStream.target_latency = {latency_ms}
*.SingleStream.performance_sample_count_override = {total}
"""


def _answer(sut: str, mode: str, index: int, cache: dict) -> int:
    """Return the label for a sample, honestly or as the dishonest SUT `sut` would."""
    if sut == "cacher" and index in cache:
        return cache[index]
    deadline = time.perf_counter() + BUSY_S
    while time.perf_counter() < deadline:
        pass
    label = (index + (sut == "flipper" and mode == "perf")) % 10
    cache[index] = label
    return label


def run_loadgen(run_dir: Path, sut: str, mode: str) -> None:
    """Run LoadGen SingleStream in run_dir (the cwd) with SUT `sut` in `mode` (acc|perf)."""
    import mlperf_loadgen as lg
    import numpy as np

    # LoadGen makes min_duration / target_latency queries: the cacher needs many to stay
    # VALID under TEST04; TEST01 logs sampling_target / that many, so the others want few.
    latency_ms = 0.002 if sut == "cacher" else 1
    (run_dir / "user.conf").write_text(USER_CONF.format(total=TOTAL_SAMPLES, latency_ms=latency_ms))
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.SingleStream
    settings.mode = lg.TestMode.AccuracyOnly if mode == "acc" else lg.TestMode.PerformanceOnly
    settings.FromConfig(str(run_dir / "user.conf"), "digits", "SingleStream")
    cache: dict = {}

    def issue(samples):
        for s in samples:
            data = np.array([_answer(sut, mode, s.index, cache)], dtype=np.int64)
            address, _ = data.__array_interface__["data"]
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, address, data.nbytes)])

    test_sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(TOTAL_SAMPLES, TOTAL_SAMPLES, lambda _: None, lambda _: None)
    log = lg.LogSettings()
    log.log_output.outdir = str(run_dir)
    lg.StartTestWithLogSettings(test_sut, qsl, settings, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(test_sut)



# ---------------------------------------------------------------- the tests


def _module(name: str):
    """Import a module of the shared MLPerf package by name, as recipe code does."""
    import importlib

    from axq.entry import use_libraries

    use_libraries()
    return importlib.import_module(f"axq_mlperf.{name}")


def _run(root: Path, name: str, sut: str, mode: str, test: str | None = None) -> Path:
    """Run LoadGen in a fresh directory root/name (with test's audit.config); return it."""
    import subprocess

    run_dir = root / name
    run_dir.mkdir()
    if test:
        _module("compliance").write_audit_config(test, run_dir)
    subprocess.run([sys.executable, __file__, str(run_dir), sut, mode], cwd=run_dir,
                   check=True, capture_output=True, timeout=120)
    return run_dir


RUNS = (  # name, sut, mode, compliance test
    ("acc", "honest", "acc", None), ("perf", "honest", "perf", None),
    ("test01", "honest", "perf", "TEST01"), ("test04", "honest", "perf", "TEST04"),
    ("flip_acc", "flipper", "acc", None), ("flip_perf", "flipper", "perf", None),
    ("flip_test01", "flipper", "perf", "TEST01"),
    ("cache_perf", "cacher", "perf", None), ("cache_test04", "cacher", "perf", "TEST04"),
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run every LoadGen run the tests need, once, one after the other."""
    root = tmp_path_factory.mktemp("loadgen")
    return {name: _run(root, name, sut, mode, test) for name, sut, mode, test in RUNS}


def _detail(run_dir: Path) -> dict:
    """Return a run's parsed detail log."""
    return _module("logs").parse_detail(run_dir / "mlperf_log_detail.txt")


def test_audit_config_matches_the_official_files(tmp_path):
    """Write TEST01 and TEST04 audit.config files with the official settings."""
    compliance = _module("compliance")
    test01 = compliance.write_audit_config("TEST01", tmp_path).read_text()
    assert "*.*.mode = 2\n" in test01
    assert "*.*.accuracy_log_rng_seed = 720381539243781796\n" in test01
    assert "*.*.accuracy_log_sampling_target = 4096\n" in test01
    assert "accuracy_log_sampling_target = 256" in compliance.audit_config_text("TEST01", "retinanet")
    test04 = compliance.write_audit_config("TEST04", tmp_path).read_text()
    for scenario in ("SingleStream", "MultiStream", "Server", "Offline"):
        for line in ("mode = 2", "performance_issue_unique = 0", "performance_issue_same = 1",
                     "performance_issue_same_index = 3"):
            assert f"*.{scenario}.{line}\n" in test04
    with pytest.raises(ValueError):
        compliance.write_audit_config("TEST05", tmp_path)


def test_loadgen_reads_the_audit_config(runs):
    """LoadGen in the run directory applies the audit settings over the requested ones."""
    test01, test04 = _detail(runs["test01"]), _detail(runs["test04"])
    assert test01["effective_accuracy_log_rng_seed"] == 720381539243781796
    assert test01["effective_accuracy_log_sampling_target"] == 4096
    assert test04["effective_performance_issue_same"] is True
    assert test04["effective_performance_issue_same_index"] == 3
    assert _detail(runs["perf"])["effective_performance_issue_same"] is False
    sampled = json.loads((runs["test01"] / "mlperf_log_accuracy.json").read_text())
    assert len(sampled) > 50  # performance mode, yet responses were logged


def test_test01_passes_on_an_honest_sut(runs):
    """Sampled performance-mode answers equal the accuracy run's: PASS, files say so."""
    out = runs["test01"]
    result = _module("compliance").verify_test01(out, runs["acc"], runs["perf"], out)
    assert (result["accuracy"], result["performance"], result["result"]) == ("PASS", "PASS", "PASS")
    assert result["matched"] > 50 and result["mismatch"] == 0
    assert "TEST PASS" in (out / "verify_accuracy.txt").read_text()
    assert "TEST PASS" in (out / "verify_performance.txt").read_text()
    assert abs(result["test_score"] / result["reference_score"] - 1) <= result["threshold"]


def test_test01_fails_when_performance_answers_differ(runs):
    """A SUT answering differently in performance mode fails the accuracy half of TEST01."""
    out = runs["flip_test01"]
    result = _module("compliance").verify_test01(out, runs["flip_acc"], runs["flip_perf"], out)
    assert (result["accuracy"], result["result"]) == ("FAIL", "FAIL")
    assert result["mismatch"] > 50 and result["missing"] == 0
    assert "TEST FAIL" in (out / "verify_accuracy.txt").read_text()
    assert "TEST PASS" not in (out / "verify_accuracy.txt").read_text()


def test_test01_performance_fails_outside_the_margin(runs):
    """A compliance run much faster than the reference fails with the official line."""
    verdict, lines, scores = _module("compliance").test01_performance(runs["cache_test04"], runs["perf"])
    assert verdict == "FAIL" and lines[-1] == "TEST FAIL: Test score invalid"
    assert scores["test_score"] < 0.5 * scores["reference_score"]  # latency: lower is faster


def test_test04_passes_on_an_honest_sut(runs):
    """Repeating one sample does not speed an honest SUT up: PASS."""
    out = runs["test04"]
    result = _module("compliance").verify_test04(out, runs["perf"], out)
    assert result["result"] == "PASS", result
    assert (out / "verify_performance.txt").read_text().splitlines()[-1] == "TEST PASS"


def test_test04_fails_on_a_sut_that_caches_by_sample_index(runs):
    """A SUT that caches answers by index gets far faster under TEST04: FAIL."""
    out = runs["cache_test04"]
    result = _module("compliance").verify_test04(out, runs["cache_perf"], out)
    assert result["result"] == "FAIL", result
    assert result["test_score"] > 2 * result["reference_score"]
    assert "TEST FAIL: Test score invalid" in (out / "verify_performance.txt").read_text()


def test_truncated_accuracy_log_keeps_4k_at_each_end_and_the_hash(runs, tmp_path):
    """accuracy.txt gets `hash=<sha256 of the full log>`; the copy keeps 4096 + 4096 chars."""
    full = runs["acc"] / "mlperf_log_accuracy.json"
    before = full.read_bytes()
    assert len(before) > 3 * 4096
    (tmp_path / "accuracy.txt").write_text("accuracy=100.000%, good=400, total=400\n")
    digest = _module("truncation").truncate_accuracy_log(full, tmp_path / "accuracy.txt")
    assert digest == hashlib.sha256(before).hexdigest() and full.read_bytes() == before
    lines = (tmp_path / "accuracy.txt").read_text().splitlines()
    assert lines == ["accuracy=100.000%, good=400, total=400", "", f"hash={digest}"]
    short = (tmp_path / "mlperf_log_accuracy.json").read_bytes()
    assert short == before[:4096] + b"\n\n...\n\n" + before[-4096:]
    assert len(short) == 2 * 4096 + 7


# Files the official checker requires, from mlcommons/inference tools/submission/
# submission_checker/constants.py at commit b66003e (2026-08): PERFORMANCE_*_PATH,
# ACCURACY_*_PATH, REQUIRED_ACC_FILES, REQUIRED_MEASURE_FILES, MEASUREMENTS_PATH (v5.1:
# a `{system}*.json` under measurements/), TEST01/TEST04 paths, REQUIRED_COMP_PER_FILES,
# REQUIRED_TEST01_ACC_FILES_1, SYSTEM_PATH and SRC_PATH (code/ for v5.1, src/ from v6.0).
SCENARIO_FILES = [
    "performance/run_1/mlperf_log_summary.txt", "performance/run_1/mlperf_log_detail.txt",
    "accuracy/mlperf_log_summary.txt", "accuracy/mlperf_log_detail.txt",
    "accuracy/mlperf_log_accuracy.json", "accuracy/accuracy.txt"]
COMPLIANCE_FILES = [
    "TEST01/verify_accuracy.txt", "TEST01/verify_performance.txt",
    "TEST01/performance/run_1/mlperf_log_summary.txt", "TEST01/performance/run_1/mlperf_log_detail.txt",
    "TEST01/accuracy/mlperf_log_accuracy.json", "TEST01/accuracy/accuracy.txt",
    "TEST04/verify_performance.txt", "TEST04/performance/run_1/mlperf_log_summary.txt",
    "TEST04/performance/run_1/mlperf_log_detail.txt"]
REQUIRED = {
    "v5.1": [f"results/S/digits/SingleStream/{f}" for f in SCENARIO_FILES]
    + [f"compliance/S/digits/SingleStream/{f}" for f in COMPLIANCE_FILES]
    + ["measurements/S/digits/SingleStream/user.conf", "measurements/S/digits/SingleStream/README.md",
       "measurements/S/digits/SingleStream/S_SingleStream.json", "systems/S.json", "code/digits/README.md"],
    "v6.0": [f"results/S/digits/SingleStream/{f}" for f in SCENARIO_FILES + COMPLIANCE_FILES]
    + ["results/S/digits/SingleStream/user.conf", "results/S/digits/SingleStream/README.md",
       "results/S/digits/SingleStream/measurements.json", "systems/S.json", "src/digits/README.md"],
}


def _spec(runs: dict[str, Path], benchmark: str = "digits"):
    """Return the RunSpec of the honest runs."""
    compliance = _module("compliance")
    compliance.verify_test01(runs["test01"], runs["acc"], runs["perf"], runs["test01"])
    compliance.verify_test04(runs["test04"], runs["perf"], runs["test04"])
    return _module("submission").RunSpec(
        benchmark=benchmark, scenario="SingleStream", performance_dir=runs["perf"],
        accuracy_dir=runs["acc"], accuracy_txt="accuracy=100.000%, good=400, total=400",
        user_conf=(runs["perf"] / "user.conf").read_text(), reproduce="axq byquery mlperf_submission",
        compliance={"TEST01": runs["test01"], "TEST04": runs["test04"]}, mlperf_model="resnet")


@pytest.mark.parametrize("layout", ["v5.1", "v6.0"])
def test_tree_has_every_file_the_checker_requires(runs, tmp_path, layout):
    """Write the tree and find each file the checker looks for, non-empty."""
    module = _module("submission")
    system = module.system_description({"system_name": "test box"})
    root = module.write_submission_tree(tmp_path, "open", "axq-user", "S", [_spec(runs)], system, layout)
    assert root == tmp_path / "open" / "axq-user"
    for name in REQUIRED[layout]:
        assert (root / name).stat().st_size > 0, name
    assert json.loads((root / "model_mapping.json").read_text()) == {"digits": "resnet"}
    described = json.loads((root / "systems" / "S.json").read_text())
    assert (described["division"], described["submitter"], described["system_name"]) == ("open", "axq-user", "test box")
    measurements = next((root / ("measurements" if layout == "v5.1" else "results")).rglob("*.json"))
    assert set(module.MEASUREMENTS_DEFAULTS) <= set(json.loads(measurements.read_text()))
    readme = next(name for name in REQUIRED[layout] if name.endswith("SingleStream/README.md"))
    assert "axq byquery mlperf_submission" in (root / readme).read_text()


def test_closed_division_refuses_a_model_the_rules_do_not_know(runs, tmp_path):
    """Digits is no MLPerf benchmark: a closed submission is a BuildError naming --division=open."""
    from axq.errors import BuildError

    layout = _module("submission")
    with pytest.raises(BuildError, match="division=open"):
        layout.write_submission_tree(tmp_path, "closed", "me", "S", [_spec(runs)], {})
    assert not (tmp_path / "closed").exists()


@pytest.mark.parametrize(("benchmark", "dataset_name", "model_name", "refused"), [
    ("resnet", "imagenet", "resnet50", False),
    ("resnet", "imagenet", "mobilenet_v2", True),
    ("resnet", "digits", "small_cnn", True),
    ("yolo-99", "coco", "ssd_mobilenet", True),
    ("yolo-99", "coco", "yolo11l", False),  # model_name=yolo: ultralytics' YOLO11l, MLPerf's model
    ("yolo-95", "coco", "yolo11n", True),
    ("retinanet", "coco", "retinanet_coco", True),  # torchvision's RetinaNet on COCO: not MLPerf's on OpenImages
    ("bert-99", "digits_detection", "small_detector", True),
])
def test_closed_division_takes_only_the_benchmarks_own_model(benchmark, dataset_name, model_name, refused):
    problem = _module("submission").closed_problem(benchmark, dataset_name, model_name)
    assert bool(problem) == refused
    assert not problem or (f"`{benchmark}`" in problem and model_name in problem and "division=open" in problem)


@pytest.mark.parametrize(("benchmark", "layout", "allowed"), [
    ("retinanet", "v6.1", False), ("retinanet", "v6.0", True), ("yolo-99", "v5.1", False),
    ("yolo-95", "v6.1", True), ("resnet", "v5.1", True), ("digits_detection", "v6.1", True)])
def test_a_layout_whose_checker_rules_lack_the_benchmark_is_named(benchmark, layout, allowed):
    problem = _module("submission").layout_problem(benchmark, layout)
    assert (problem == "") == allowed
    assert allowed or problem.startswith(f"the checker's {layout} rules have no `{benchmark}`: use layout=")


def test_system_description_has_every_required_field():
    """Every field of SYSTEM_DESC_REQUIRED_FIELDS is present; meaningful ones are filled."""
    layout = _module("submission")
    described = layout.system_description({"cooling": "liquid", "status": "preview"})
    assert set(layout.SYSTEM_FIELDS) <= set(described)
    meaningful = ("status", "system_name", "accelerators_per_node", "number_of_nodes", "host_processor_model_name",
                  "host_processor_core_count", "host_memory_capacity", "framework",
                  "operating_system", "system_type", "accelerator_model_name", "other_software_stack")
    assert all(described[k] not in ("", None) for k in meaningful)
    assert (described["cooling"], described["status"]) == ("liquid", "preview")
    assert "mlcommons-loadgen 6." in described["other_software_stack"]


if __name__ == "__main__":
    run_loadgen(Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3])
    sys.exit(0)
