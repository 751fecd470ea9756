"""Write the audit.config of MLPerf compliance tests TEST01 and TEST04, and verify their runs.

The settings and rules follow mlcommons/inference `compliance/TEST01/` and
`compliance/TEST04/` (audit.config, verify_accuracy.py, verify_performance.py; the
directories were `compliance/nvidia/TEST0x` before 2025). LoadGen reads `audit.config`
from its working directory and looks its keys up with the model `*`, so every key here
starts with `*.`: a model-specific key would never be read by LoadGen itself.
"""

from __future__ import annotations

import json
from pathlib import Path

from axq_mlperf import logs
from axq_mlperf.scenarios import COMPLIANCE_TESTS, SCENARIOS, TEST04_FIELD, is_stream

TESTS = COMPLIANCE_TESTS
HEADER = (
    "# The format of this config file is 'key = value'.\n"
    "# The key has the format 'model.scenario.key'. Value is mostly int64_t.\n"
    "# Model maybe '*' as wildcard. In that case the value applies to all models.\n"
    "# All times are in milli seconds\n"
)
# TEST01: log a sample of responses in performance mode with a fixed seed.
TEST01_SEED = 720381539243781796
TEST01_SAMPLING_TARGET = {"3d-unet": 64, "yolo": 64, "pointpainting": 256, "retinanet": 256,
                          "stable-diffusion-xl": 128, "wan-2.2-t2v-a14b": 50}
DEFAULT_SAMPLING_TARGET = 4096  # resnet50, bert, dlrm, gpt-j, rgat, whisper, ...
# TEST04: issue one sample (index 3) over and over instead of unique samples.
TEST04_KEYS = (("mode", 2), ("performance_issue_unique", 0), ("performance_issue_same", 1),
               ("performance_issue_same_index", 3))
PASS, FAIL = "PASS", "FAIL"


def audit_config_text(test: str, model: str = "*", scenario: str = "*") -> str:
    """Return the audit.config text of `test` for `model` (picks TEST01's sampling target)."""
    if test == "TEST01":
        target = TEST01_SAMPLING_TARGET.get(model.split("-99")[0], DEFAULT_SAMPLING_TARGET)
        return (HEADER + "\n# mode dictionary (0 = submission, 1 = accuracy, 2 = performance, "
                "3 = find peak perf)\n*.*.mode = 2\n"
                f"*.*.accuracy_log_rng_seed = {TEST01_SEED}\n"
                f"*.*.accuracy_log_sampling_target = {target}\n")
    if test == "TEST04":
        scenarios = SCENARIOS if scenario == "*" else (scenario,)
        lines = [f"*.{s}.{key} = {value}" for s in scenarios for key, value in TEST04_KEYS]
        return HEADER + "\n".join(lines) + "\n"
    raise ValueError(f"unknown compliance test {test!r}; expected one of {', '.join(TESTS)}")


def write_audit_config(test: str, run_dir: Path, model: str = "*", scenario: str = "*") -> Path:
    """Write `audit.config` for `test` into run_dir, where LoadGen will look for it."""
    if scenario != "*" and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    path = Path(run_dir) / "audit.config"
    path.write_text(audit_config_text(test, model, scenario), encoding="utf-8")
    return path


# ---------------------------------------------------------------- TEST01 accuracy


def _responses(log: Path) -> list[tuple[int, str]]:
    """Return (qsl_idx, hex data) of every response in an mlperf_log_accuracy.json."""
    return [(int(r["qsl_idx"]), str(r["data"]).upper()) for r in json.loads(Path(log).read_text())]


def compare_responses(reference: list[tuple[int, str]], test: list[tuple[int, str]]) -> dict:
    """Count how the sampled performance-mode responses agree with accuracy-mode ones.

    Like verify_accuracy.py: the reference keeps its first answer per index; each test
    response is compared with the answer last seen for its index (accuracy run, then
    earlier test responses). Unlike its default mode, which compares only the first
    element, the whole response must match byte for byte (as its --unixmode does).
    """
    seen: dict[int, str] = {}
    counts = dict.fromkeys(("acc_duplicates", "acc_mismatch", "matched", "mismatch", "missing"), 0)
    for idx, data in reference:
        if idx in seen:
            counts["acc_duplicates"] += 1
            counts["acc_mismatch"] += seen[idx] != data
        seen.setdefault(idx, data)
    for idx, data in test:
        if idx not in seen:
            counts["missing"] += 1
        else:
            counts["matched"] += 1
            counts["mismatch"] += seen[idx] != data
        seen[idx] = data
    return counts | {"acc_entries": len(reference), "perf_entries": len(test)}


def accuracy_report(counts: dict) -> tuple[str, str]:
    """Return (PASS|FAIL, verify_accuracy.txt text) for compare_responses' counts."""
    verdict = PASS if counts["mismatch"] == 0 and counts["matched"] > 0 else FAIL
    lines = [
        "Verifying accuracy.",
        f"num_acc_log_entries = {counts['acc_entries']}",
        f"num_acc_log_duplicate_keys = {counts['acc_duplicates']}",
        f"num_acc_log_data_mismatch = {counts['acc_mismatch']}",
        f"num_perf_log_entries = {counts['perf_entries']}",
        f"num_perf_log_qsl_idx_match = {counts['matched']}",
        f"num_perf_log_data_mismatch = {counts['mismatch']}",
        f"num_missing_qsl_idxs = {counts['missing']}",
        f"TEST {verdict}",
    ]
    return verdict, "\n".join(lines) + "\n\n"


# ---------------------------------------------------------------- performance


def relaxed_threshold(scenario: str, reference_score: float) -> float:
    """Return the allowed relative difference: 10%, or 20% for very short stream latencies."""
    short = (scenario == "SingleStream" and reference_score <= 200_000) or (
        scenario == "MultiStream" and reference_score <= 1_600_000)
    return 0.20 if short else 0.10


def test01_performance(compliance_dir: Path, perf_dir: Path) -> tuple[str, list[str], dict]:
    """Check the TEST01 run's headline number is within the margin of the reference run's."""
    ref, test = (logs.read_detail(d) for d in (perf_dir, compliance_dir))
    lines = ["Verifying performance."]
    problem = _test01_problem(ref, test, perf_dir, compliance_dir)
    if problem:
        return FAIL, [*lines, problem], {}
    ref_score, test_score = logs.detail_metric(ref), logs.detail_metric(test)
    margin = relaxed_threshold(logs.detail_scenario(ref), ref_score)
    ok = ref_score * (1 - margin) <= test_score <= ref_score * (1 + margin)
    lines += [f"Reference score = {ref_score}", f"Test score = {test_score}",
              "TEST PASS" if ok else "TEST FAIL: Test score invalid"]
    return (PASS if ok else FAIL), lines, {"reference_score": ref_score, "test_score": test_score,
                                           "threshold": margin}


def _test01_problem(ref: dict, test: dict, perf_dir: Path, compliance_dir: Path) -> str:
    """Return why the two detail logs cannot be compared at all, or ""."""
    for detail, where in ((ref, perf_dir), (test, compliance_dir)):
        if not logs.detail_valid(detail):
            return f"TEST FAIL: Invalid results in {Path(where) / 'mlperf_log_detail.txt'}"
    if logs.detail_scenario(ref) != logs.detail_scenario(test):
        return "TEST FAIL: Test and reference scenarios do not match!"
    latency = "effective_target_latency_ns"
    if logs.detail_scenario(ref) == "Server" and ref.get(latency) != test.get(latency):
        return "TEST FAIL: Server target latency mismatch"
    return ""


def summary_score(summary: dict) -> tuple[str, float]:
    """Return (scenario, throughput-like score) of a summary log, as TEST04 compares them."""
    scenario = str(summary["Scenario"]).replace(" ", "")
    value = logs.summary_value(summary, TEST04_FIELD[scenario])
    if value is None and scenario == "SingleStream":
        value = logs.summary_value(summary, "Early stopping 99.9")
    score = float(value)  # type: ignore[arg-type]
    return scenario, (1e9 / score if is_stream(scenario) else score)


def test04_performance(compliance_dir: Path, perf_dir: Path) -> tuple[str, list[str], dict]:
    """Check repeating one sample made the run no more than the allowed margin faster."""
    ref, test = (logs.read_summary(d) for d in (perf_dir, compliance_dir))
    lines = ["Verifying performance."]
    problem = _test04_problem(ref, test)
    if problem:
        return FAIL, [*lines, problem], {}
    (scenario, ref_score), (_, test_score) = summary_score(ref), summary_score(test)
    margin = relaxed_threshold(scenario, ref_score)
    ok = test_score < ref_score * (1 + margin)
    lines += [f"reference score = {ref_score}", f"test score = {test_score}",
              "TEST PASS" if ok else "TEST FAIL: Test score invalid"]
    return (PASS if ok else FAIL), lines, {"reference_score": ref_score, "test_score": test_score,
                                           "threshold": margin}


def _test04_problem(ref: dict, test: dict) -> str:
    """Return why two summary logs cannot be compared, or ""."""
    for summary, which in ((ref, "Reference"), (test, "Test")):
        if summary.get("Result is") != "VALID":
            return f"TEST FAIL: {which} results are invalid"
    if ref["Scenario"] != test["Scenario"]:
        return "TEST FAIL: Test and reference scenarios do not match!"
    latency = "target_latency (ns)"
    if ref["Scenario"] == "Server" and ref.get(latency) != test.get(latency):
        return "TEST FAIL: Server target latency mismatch"
    return ""


# ---------------------------------------------------------------- the two tests


def verify_test01(compliance_run_dir: Path, accuracy_run_dir: Path, perf_run_dir: Path,
                  out_dir: Path, dtype: str = "int64") -> dict:
    """Verify a TEST01 run; write verify_accuracy.txt and verify_performance.txt in out_dir.

    `dtype` is kept for the official interface; responses are compared byte for byte.
    """
    reference = _responses(Path(accuracy_run_dir) / "mlperf_log_accuracy.json")
    counts = compare_responses(reference, _responses(Path(compliance_run_dir) / "mlperf_log_accuracy.json"))
    accuracy, accuracy_text = accuracy_report(counts)
    performance, lines, scores = test01_performance(compliance_run_dir, perf_run_dir)
    _write(out_dir, "verify_accuracy.txt", accuracy_text)
    _write(out_dir, "verify_performance.txt", "\n".join(lines) + "\n")
    result = PASS if accuracy == performance == PASS else FAIL
    return {"test": "TEST01", "accuracy": accuracy, "performance": performance, "result": result,
            "dtype": dtype, **counts, **scores, "performance_report": lines[-1]}


def verify_test04(compliance_run_dir: Path, perf_run_dir: Path, out_dir: Path) -> dict:
    """Verify a TEST04 run against the reference performance run; write verify_performance.txt."""
    performance, lines, scores = test04_performance(compliance_run_dir, perf_run_dir)
    _write(out_dir, "verify_performance.txt", "\n".join(lines) + "\n")
    return {"test": "TEST04", "performance": performance, "result": performance, **scores,
            "performance_report": lines[-1]}


def _write(directory: Path, name: str, text: str) -> Path:
    """Write text to directory/name, making the directory."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / name
    path.write_text(text, encoding="utf-8")
    return path
