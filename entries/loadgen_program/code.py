"""Run an MLPerf LoadGen test of an image classifier and read its results.

The build checks the parameters, writes `user.conf` (read back to check it), and runs
`harness.py` in a child process per test, in the entry directory, streaming its output
into the build log. A fresh process matters: LoadGen loads its embedded mlperf.conf only
on the first `TestSettings.FromConfig` call of a process. The child fills in the targets
left null (QPS, latency) from timing the model, so short default runs are VALID on any
machine. Afterwards the build parses `mlperf_log_summary.txt` and, in AccuracyOnly mode,
decodes `mlperf_log_accuracy.json` (each response is the predicted class as an int64).

Two kinds of run (`loadgen_execution`): `test` (the default) is short: user.conf sets
min_duration (`loadgen_duration_s`, 1 s unless given), query counts and timed targets.
`valid` is the official run: user.conf holds only the targets (timed if not given) and
the performance sample count the rules ask for, so the embedded mlperf.conf's 600 s,
query counts and RNG seeds apply; anything that would shorten it is a BuildError.

Compliance tests (`loadgen_compliance_test=TEST01|TEST04`, PerformanceOnly runs): the
build writes the test's audit.config (entries/mlperf_submission/compliance.py) into the
entry directory, where the LoadGen child reads it, then verifies the run against its
reference runs, which it asks axq for (`ctx.byquery`, built if missing; recorded as used): the same
parameters with no compliance test, in AccuracyOnly (TEST01) and PerformanceOnly mode.
The verdict is the `compliance_result` getter (PASS/FAIL); verify_accuracy.txt (TEST01)
and verify_performance.txt sit in the entry as the submission checker expects them. The
references are looked up, not declared as deps, because a recipe's deps can't depend on
whether a parameter is set; the entry records their names in `results["compliance"]`.

Getters read only `entry.results`: no torch, numpy or LoadGen on the cached path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
MODES = ("AccuracyOnly", "PerformanceOnly")
PRECISIONS = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16")}
HERE = Path(__file__).resolve().parent
SUMMARY, ACCURACY_LOG = "mlperf_log_summary.txt", "mlperf_log_accuracy.json"
EXECUTIONS = ("test", "valid")
COMPLIANCE_TESTS = ("TEST01", "TEST04")
COMPLIANCE = HERE.parent / "mlperf_submission" / "compliance.py"
TEST_DURATION_S = 1  # min_duration of a test run when loadgen_duration_s is null
# Performance sample counts the rules fix (the embedded mlperf.conf, by model name);
# a model they don't know uses the whole data set.
OFFICIAL_SAMPLE_COUNTS = {"resnet50": 1024}
# Models whose Server latency bound mlperf.conf fixes: a valid run must not set its own.
OFFICIAL_SERVER_LATENCY = frozenset({"resnet50"})
# The headline of each scenario: (summary field, unit).
HEADLINES = {
    "Offline": ("Samples per second", "samples/s"),
    "Server": ("Completed samples per second", "samples/s"),
    "SingleStream": ("90.0th percentile latency (ns)", "ns"),
    "MultiStream": ("99.0th percentile latency (ns)", "ns"),
}
# LoadGen's checks behind VALID (the first only in Server runs): results key -> summary field.
CHECKS = {"latency_constraint_met": "Performance constraints satisfied",
          "min_duration_met": "Min duration satisfied", "min_queries_met": "Min queries satisfied",
          "early_stopping_met": "Early stopping satisfied"}


# ----------------------------------------------------------------------------- build


def build(ctx: Any) -> dict:
    """Check the parameters, write user.conf, run the test in a child, read its logs."""
    params = ctx.params
    check_params(params)
    _, labels = ctx.deps["preprocessed"].call("load_arrays")
    refs = reference_runs(ctx) if params["loadgen_compliance_test"] else {}
    settings, calibrate = reference_plan(params, refs) if refs else conf_plan(params, len(labels))
    write_user_conf(ctx.path / "user.conf", params, settings)
    config = child_config(ctx, settings, calibrate, len(labels))
    (ctx.path / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    if refs:
        write_audit_config(ctx.path, params)
    run_child(ctx, params["loadgen_timeout_s"])
    results = collect_results(ctx.path, params, labels)
    if refs:
        results["compliance"] = verify_compliance(ctx, params, refs)
    return results


def check_params(params: dict) -> None:
    """Raise BuildError, with a suggestion where one fits, for a value the test can't use."""
    check_choice("loadgen_scenario", params["loadgen_scenario"], SCENARIOS)
    check_choice("loadgen_mode", params["loadgen_mode"], MODES)
    check_choice("loadgen_execution", params["loadgen_execution"], EXECUTIONS)
    check_compliance(params)
    check_valid_execution(params)
    device = str(params["device"]).split(":")[0]
    check_choice("device", device, tuple(PRECISIONS))
    check_precision(device, params["precision"])
    for name in ("batch_size", "loadgen_multistreamness"):
        check_number(name, params[name], integer=True)
    check_number("loadgen_duration_s", params["loadgen_duration_s"], null=True)
    check_number("server_max_wait_ms", params["server_max_wait_ms"], zero=True)
    check_number("harness_baseline_s", params["harness_baseline_s"], zero=True)
    for name in ("loadgen_buffer_size", "loadgen_query_count", "num_threads"):
        check_number(name, params[name], integer=True, null=True)
    for name in ("loadgen_target_qps", "loadgen_target_latency", "loadgen_timeout_s"):
        check_number(name, params[name], null=True)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise BuildError unless value is one of choices."""
    from axq.errors import BuildError, did_you_mean

    if value not in choices:
        hint = did_you_mean(str(value), choices) or "; use one of " + ", ".join(choices)
        raise BuildError(f"{name}={value} is not known{hint}")


def check_precision(device: str, precision: Any) -> None:
    """Raise BuildError for a precision the device can't run (fp16 needs CUDA)."""
    from axq.errors import BuildError

    allowed = PRECISIONS[device]
    if precision == "fp16" and device == "cpu":
        raise BuildError("precision=fp16 needs device=cuda; on device=cpu use precision=bf16 or fp32")
    check_choice("precision", precision, allowed)


def check_number(name: str, value: Any, integer: bool = False, null: bool = False, zero: bool = False) -> None:
    """Raise BuildError unless value is a positive number (or 0, or null, where allowed)."""
    from axq.errors import BuildError

    if value is None and null:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or (value == 0 and not zero):
        what = "an integer" if integer else "a number"
        raise BuildError(f"{name}={value} must be {what} > 0" + (" (or null)" if null else ""))


def check_compliance(params: dict) -> None:
    """Raise BuildError for an unknown compliance test or one asked of an accuracy run."""
    from axq.errors import BuildError

    test = params["loadgen_compliance_test"]
    if test is None:
        return
    check_choice("loadgen_compliance_test", test, COMPLIANCE_TESTS)
    if params["loadgen_mode"] != "PerformanceOnly":
        raise BuildError(f"loadgen_compliance_test={test} runs in PerformanceOnly mode (its audit.config "
                         f"says so); add loadgen_mode=PerformanceOnly")


def check_valid_execution(params: dict) -> None:
    """Raise BuildError for a parameter that would make a loadgen_execution=valid run non-compliant."""
    from axq.errors import BuildError

    if params["loadgen_execution"] != "valid":
        return
    for name in ("loadgen_duration_s", "loadgen_query_count"):
        if params[name] is not None:
            raise BuildError(f"{name}={params[name]} shortens the run, which loadgen_execution=valid must not "
                             f"do (mlperf.conf sets durations and counts); drop it or use loadgen_execution=test")


def sample_count(params: dict, dataset_size: int) -> int:
    """Return the performance sample count: the buffer size, else the rules' count, else the data set."""
    from axq.errors import BuildError

    buffer, official = params["loadgen_buffer_size"], OFFICIAL_SAMPLE_COUNTS.get(params["model_name"])
    if buffer is not None and buffer > dataset_size:
        raise BuildError(f"loadgen_buffer_size={buffer} is more than the {dataset_size} samples of the data set")
    if buffer is not None and params["loadgen_execution"] == "valid" and buffer < (official or dataset_size):
        raise BuildError(f"loadgen_buffer_size={buffer} is fewer samples than a valid run of "
                         f"{params['model_name']} needs ({official or dataset_size}); leave it null")
    if buffer is not None:
        return buffer
    official = official if params["loadgen_execution"] == "valid" else None
    return min(official or dataset_size, dataset_size)


def conf_plan(params: dict, dataset_size: int) -> tuple[dict[str, float], list[str]]:
    """Return the user.conf values the parameters fix, and the targets for the child to time."""
    if params["loadgen_execution"] == "valid":
        return valid_plan(params, dataset_size)
    scenario = params["loadgen_scenario"]
    duration = params["loadgen_duration_s"] or TEST_DURATION_S
    settings: dict[str, float] = {"min_duration": round(duration * 1000),
                                  "performance_sample_count_override": sample_count(params, dataset_size)}
    settings.update(query_counts(params))
    if scenario == "MultiStream":
        settings["samples_per_query"] = params["loadgen_multistreamness"]
    targets = target_values(params)
    settings.update({k: v for k, v in targets.items() if v is not None})
    calibrate = [k for k, v in targets.items() if v is None and needs_timing(params)]
    if query_floor(params):
        calibrate.append("min_query_count")
    return settings, calibrate


def valid_plan(params: dict, dataset_size: int) -> tuple[dict[str, float], list[str]]:
    """Return an official run's user.conf values (targets and sample count) and the targets to time.

    mlperf.conf's durations, query counts and seeds stay untouched; a Server latency bound
    mlperf.conf fixes for the model (resnet50: 15 ms) is neither timed nor overridden
    unless the user gives one.
    """
    settings: dict[str, float] = {"performance_sample_count_override": sample_count(params, dataset_size)}
    if params["loadgen_scenario"] == "MultiStream":
        settings["samples_per_query"] = params["loadgen_multistreamness"]
    targets = target_values(params)
    if params["loadgen_scenario"] == "Server" and params["model_name"] in OFFICIAL_SERVER_LATENCY:
        targets = {k: v for k, v in targets.items() if k != "target_latency" or v is not None}
    settings.update({k: v for k, v in targets.items() if v is not None})
    return settings, [k for k, v in targets.items() if v is None and needs_timing(params)]


# Early stopping needs at least this many queries at the 90th and 99th percentile (the
# minimums mlperf.conf itself sets for SingleStream/Server are far larger: a full run).
MIN_QUERIES = {"SingleStream": 64, "MultiStream": 662, "Server": 662, "Offline": 1}


def query_counts(params: dict) -> dict[str, float]:
    """Return min and max query counts: exactly loadgen_query_count when set, else enough for early stopping."""
    count = params["loadgen_query_count"]
    if count is not None:
        return {"min_query_count": count, "max_query_count": count}
    if query_floor(params):
        return {}  # the child times the model and sets it (see harness.calibrate)
    return {"min_query_count": MIN_QUERIES[params["loadgen_scenario"]]}


def query_floor(params: dict) -> bool:
    """Say whether a short run with a user-given target needs a query floor to last min_duration.

    LoadGen sizes a run from the target: Offline issues max(min_query_count, 1.1 x duration
    x target_qps) samples, the stream scenarios pace queries by target_latency. A target
    easier than the real system ends the run before min_duration (INVALID). So a short
    performance run with a given target and no loadgen_query_count gets a floor timed from
    the model (Server needs none: queries arrive at the target rate for min_duration).
    """
    scenario, mode = params["loadgen_scenario"], params["loadgen_mode"]
    target = params["loadgen_target_qps"] if scenario == "Offline" else params["loadgen_target_latency"]
    return (scenario != "Server" and mode == "PerformanceOnly" and params["loadgen_query_count"] is None
            and target is not None and params["loadgen_execution"] == "test")


def target_values(params: dict) -> dict[str, Any]:
    """Return the scenario's user.conf targets from the parameters (None where left null)."""
    qps, latency = params["loadgen_target_qps"], params["loadgen_target_latency"]
    scenario = params["loadgen_scenario"]
    if scenario == "Offline":
        return {"target_qps": qps}
    if scenario == "Server":
        return {"target_qps": qps, "target_latency": None if latency is None else round(latency)}
    return {"target_latency": latency}


def needs_timing(params: dict) -> bool:
    """Say whether null targets matter: always but in AccuracyOnly runs other than Server."""
    return params["loadgen_mode"] == "PerformanceOnly" or params["loadgen_scenario"] == "Server"


def write_user_conf(path: Path, params: dict, settings: dict[str, float]) -> None:
    """Write user.conf for the model and scenario, and read it back to check every line."""
    from axq.errors import BuildError

    conf = user_conf_module()
    model, scenario = params["model_name"], params["loadgen_scenario"]
    try:
        path.write_text(conf.render(model, scenario, settings), encoding="utf-8")
        conf.check(path, model, scenario, settings)
    except conf.UserConfError as error:
        raise BuildError(str(error)) from None


def user_conf_module() -> Any:
    """Return userconf.py beside this file (loaded by path: recipe code is not a package)."""
    from axq.entry import load_code

    return load_code(str(HERE / "userconf.py"))


def child_config(ctx: Any, settings: dict, calibrate: list[str], dataset_size: int) -> dict:
    """Return what the child needs: the test's settings and how to load both dependencies."""
    params = ctx.params
    return {
        "scenario": params["loadgen_scenario"], "mode": params["loadgen_mode"],
        "model_name": params["model_name"], "user_conf": settings, "calibrate": calibrate,
        "buffer_size": int(settings["performance_sample_count_override"]),
        "batch_size": params["batch_size"], "multistreamness": params["loadgen_multistreamness"],
        "server_max_wait_ms": params["server_max_wait_ms"], "num_threads": params["num_threads"],
        "min_queries": MIN_QUERIES[params["loadgen_scenario"]], "baseline_s": params["harness_baseline_s"],
        "device": params["device"], "precision": params["precision"],
        "preprocessed": dep_spec(ctx.deps["preprocessed"]), "model": dep_spec(ctx.deps["model"]),
    }


def dep_spec(entry: Any) -> dict:
    """Return a dependency entry as the child loads it: path, params, results, code path."""
    return {"path": str(entry.path), "params": dict(entry.params),
            "results": dict(getattr(entry, "results", {}) or {}), "code": str(entry.code().__file__)}


# ----------------------------------------------------------------------------- child


def run_child(ctx: Any, timeout_s: float | None) -> None:
    """Run harness.py in the entry directory, its output into the log; raise if it fails."""
    command = [sys.executable, str(HERE / "harness.py"), "config.json"]
    process = subprocess.Popen(command, cwd=ctx.path, env=child_env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
    timer = threading.Timer(timeout_s, process.kill) if timeout_s else None
    if timer:
        timer.start()
    tail = stream_output(ctx, process)
    if timer:
        timer.cancel()
    if process.returncode != 0:
        raise child_error(ctx.path, process.returncode, tail, timeout_s)


def child_env() -> dict[str, str]:
    """Return the environment with axq and this recipe importable in the child."""
    import os

    import axq

    paths = [str(HERE), str(Path(axq.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def stream_output(ctx: Any, process: subprocess.Popen) -> list[str]:
    """Copy the child's lines into the build log until it ends; return the last 20."""
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        ctx.log(line.rstrip())
        tail = [*tail[-19:], line.rstrip()]
    process.wait()
    return tail


def child_error(path: Path, code: int, tail: list[str], timeout_s: float | None) -> Exception:
    """Return the BuildError for a failed child: its reported reason, else its last lines."""
    from axq.errors import BuildError

    report = path / "error.json"
    if report.is_file():
        reason = json.loads(report.read_text(encoding="utf-8"))["reason"]
        return BuildError(f"LoadGen test failed: {reason}")
    if code < 0 and timeout_s:
        return BuildError(f"LoadGen test killed after loadgen_timeout_s={timeout_s}")
    last = next((line for line in reversed(tail) if line.strip()), "no output")
    return BuildError(f"LoadGen test process exited with status {code}: {last}")


# ----------------------------------------------------------------------------- compliance


def compliance_module() -> Any:
    """Return entries/mlperf_submission/compliance.py (audit.config and verification)."""
    from axq.entry import load_code

    return load_code(str(COMPLIANCE))


def write_audit_config(path: Path, params: dict) -> None:
    """Write the compliance test's audit.config where the LoadGen child will read it."""
    compliance_module().write_audit_config(params["loadgen_compliance_test"], path, params["model_name"], "*")


def reference_runs(ctx: Any) -> dict[str, Any]:
    """Return the reference runs of a compliance run (built if missing): accuracy and performance."""
    params = ctx.params
    tag = f"classified_{params['dataset_name']}"
    fixed = {"framework", "dataset_name", "loadgen_compliance_test", "loadgen_mode"}
    same = {k: v for k, v in params.items() if k not in fixed}
    return {mode: ctx.byquery(f"loadgen_output,{tag},loadgen_mode={mode}", overrides=same)
            for mode in MODES}


def reference_plan(params: dict, refs: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Return the reference performance run's user.conf values (timed targets included), none to time.

    A compliance run must run as its reference did: the same targets, counts and
    durations, not targets timed afresh (which differ from process to process).
    """
    text = (refs["PerformanceOnly"].path / "user.conf").read_text(encoding="utf-8")
    parsed = user_conf_module().parse(text)
    return {key: value for (_, _, key), value in parsed.items()}, []


def verify_compliance(ctx: Any, params: dict, refs: dict[str, Any]) -> dict:
    """Verify this compliance run against its reference runs; write the verify_*.txt files here."""
    test, compliance = params["loadgen_compliance_test"], compliance_module()
    accuracy, performance = refs["AccuracyOnly"].path, refs["PerformanceOnly"].path
    if test == "TEST01":
        found = compliance.verify_test01(ctx.path, accuracy, performance, ctx.path)
    else:
        found = compliance.verify_test04(ctx.path, performance, ctx.path)
    ctx.log(f"{test}: {found['result']} against {refs['AccuracyOnly'].name}, {refs['PerformanceOnly'].name}")
    return {"test": test, "result": found["result"], "details": found,
            "reference_accuracy": refs["AccuracyOnly"].name, "reference_performance": refs["PerformanceOnly"].name}


# ----------------------------------------------------------------------------- results


def collect_results(path: Path, params: dict, labels: Any) -> dict:
    """Return the results of a finished test: summary, validity, headline, accuracy."""
    summary = parse_summary((path / SUMMARY).read_text(encoding="utf-8"))
    scenario, mode = params["loadgen_scenario"], params["loadgen_mode"]
    calibrated = json.loads((path / "calibration.json").read_text(encoding="utf-8"))
    sut = json.loads((path / "sut_stats.json").read_text(encoding="utf-8"))
    sut["sut_busy_fraction"] = round(sut["sut_busy_s"] / sut["test_wall_s"], 4) if sut["test_wall_s"] else None
    results = {"scenario": scenario, "mode": mode, "summary": summary, "calibrated": calibrated, "sut": sut}
    results.update(validity(summary, mode))
    if mode == "AccuracyOnly":
        results.update(score(path / ACCURACY_LOG, labels))
    else:
        results.update(headline(summary, scenario))
        if "bare_samples_per_s" in sut and scenario in ("Offline", "Server"):
            sut["harness_efficiency"] = round(results["performance"] / sut["bare_samples_per_s"], 4)
    return results


def parse_summary(text: str) -> dict[str, Any]:
    """Return the `key : value` fields of mlperf_log_summary.txt, numbers as numbers."""
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() and not key.strip().startswith("*"):
            fields.setdefault(key.strip(), to_number(value.strip()))
    fields["invalid_reasons"] = invalid_lines(text)
    return fields


def to_number(text: str) -> Any:
    """Return text as an int or float when it is one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def invalid_lines(text: str) -> list[str]:
    """Return LoadGen's reasons for an INVALID result: unmet checks and recommendations."""
    lines = [f"{line.strip()}" for line in text.splitlines()
             if any(check in line for check in CHECKS.values()) and line.rstrip().endswith("NO")]
    if "Recommendations:" in text:
        block = text.split("Recommendations:", 1)[1].split("=====", 1)[0]
        lines += [line.strip(" *") for line in block.splitlines() if line.strip().startswith("*")]
    return lines


def validity(summary: dict, mode: str) -> dict:
    """Return result_valid, valid and (when invalid) LoadGen's reason lines."""
    status = summary.get("Result is")
    valid = status == "VALID" or (status is None and mode == "AccuracyOnly")
    found = {"result_valid": valid, "valid": valid}
    if not valid:
        reasons = summary["invalid_reasons"] or [f"LoadGen reports the result as {status}"]
        found["invalid_reason"] = "LoadGen: INVALID result: " + "; ".join(reasons)
    return found


def headline(summary: dict, scenario: str) -> dict:
    """Return the scenario's headline metric, its unit, and which of LoadGen's checks held."""
    metric, unit = HEADLINES[scenario]
    found = {"metric": metric, "performance": summary.get(metric), "unit": unit}
    found.update({key: summary[field] == "Yes" for key, field in CHECKS.items() if field in summary})
    return found


def score(log: Path, labels: Any) -> dict:
    """Return accuracy, good and total from the accuracy log's int64 predicted classes."""
    records = json.loads(log.read_text(encoding="utf-8"))
    predicted = {r["qsl_idx"]: int.from_bytes(bytes.fromhex(r["data"]), "little", signed=True)
                 for r in records}
    good = sum(1 for index, label in predicted.items() if int(labels[index]) == label)
    total = len(predicted)
    return {"accuracy": round(100.0 * good / total, 6) if total else 0.0, "good": good, "total": total}


# ----------------------------------------------------------------------------- getters


def accuracy(entry: Any) -> float:
    """Return top-1 accuracy in percent."""
    return float(accuracy_results(entry)["accuracy"])


def accuracy_report(entry: Any) -> str:
    """Return `accuracy=98.222%, good=442, total=450`."""
    found = accuracy_results(entry)
    return f"accuracy={found['accuracy']:.3f}%, good={found['good']}, total={found['total']}"


def performance(entry: Any) -> float:
    """Return the headline: samples/s (Offline, Server) or percentile latency in ns."""
    return performance_results(entry)["performance"]


def performance_report(entry: Any) -> str:
    """Return validity, headline with unit, target and LoadGen's three checks on one line."""
    found = performance_results(entry)
    checks = ", ".join(f"{key}={'yes' if found[key] else 'NO'}" for key in CHECKS if key in found)
    return (f"{'VALID' if found['result_valid'] else 'INVALID'}, {found['scenario']}: "
            f"{found['metric']} = {found['performance']} {found['unit']}, "
            f"target {target_text(found)}, {checks}")


def target_text(found: dict) -> str:
    """Return the test's target as LoadGen's summary states it."""
    summary = found.get("summary", {})
    for key, unit in (("target_qps", "QPS"), ("target_latency (ns)", "ns")):
        if key in summary:
            return f"{summary[key]} {unit}"
    return "unknown"


def latency_p99_ns(entry: Any) -> float:
    """Return the 99th percentile latency in ns of a performance run (any scenario)."""
    return performance_results(entry)["summary"]["99.00 percentile latency (ns)"]


def result_valid(entry: Any) -> bool:
    """Return whether LoadGen judged the result VALID."""
    return bool(entry.results.get("result_valid"))


def summary(entry: Any) -> dict:
    """Return every parsed field of mlperf_log_summary.txt."""
    return dict(entry.results.get("summary", {}))


def compliance_result(entry: Any) -> str:
    """Return PASS or FAIL: the verdict of this compliance run's verification."""
    return str(compliance(entry)["result"])


def compliance(entry: Any) -> dict:
    """Return the compliance verification: test, result, details, the reference runs' names."""
    from axq.errors import GetterError

    if "compliance" not in entry.results:
        raise GetterError("no compliance result: this run had no compliance test; query with "
                          "loadgen_mode=PerformanceOnly,loadgen_compliance_test=TEST01 (or TEST04)")
    return dict(entry.results["compliance"])


def accuracy_results(entry: Any) -> dict:
    """Return the results of an AccuracyOnly run, or raise GetterError for another mode."""
    from axq.errors import GetterError

    if "accuracy" not in entry.results:
        raise GetterError("no accuracy in a loadgen_mode=PerformanceOnly run; query with loadgen_mode=AccuracyOnly")
    return entry.results


def performance_results(entry: Any) -> dict:
    """Return the results of a PerformanceOnly run, or raise GetterError for another mode."""
    from axq.errors import GetterError

    if "performance" not in entry.results:
        raise GetterError("no performance figure in a loadgen_mode=AccuracyOnly run (LoadGen does not "
                          "time accuracy runs); query with loadgen_mode=PerformanceOnly")
    return entry.results
