"""Run an MLPerf LoadGen test of an image classifier.

The build plans and writes `user.conf` (axq_mlperf.planning; read
back to check it), writes the child's typed configuration (axq_mlperf.config) and runs
`harness.py` in a child process in the entry directory (axq_mlperf.child), then reads the
logs (axq_mlperf.results). The child fills in the targets left null (QPS, latency) from
timing the model, so short default runs are VALID on any machine.

Compliance tests (`loadgen_compliance_test=TEST01|TEST04`, PerformanceOnly runs): the
build writes the test's audit.config into the entry directory, where the LoadGen child
reads it, runs with its reference performance run's user.conf, then verifies the run
against its reference runs (axq_mlperf.compliance): the same parameters with no compliance
test, in AccuracyOnly (TEST01) and PerformanceOnly mode. The references are planned
dependencies (`planned_deps`): in the identity, in `axq plan`, built first.

A performance run (loadgen_mode=PerformanceOnly: plain runs, a compliance test's
performance part, peak probes, sweep and explore points, submission runs) runs its child
inside a measurement: one at a time per machine, and `results["contended"]` says whether
other processes used more than `contention_threshold` of the machine meanwhile
(`results["measurement"]` holds the whole report; `performance_report` flags it).

An ImageNet run's preprocessed data set is a planned dependency: its preprocessing is the
model's own (axq_mlperf.classifiers), so models that preprocess alike share it. The
original data set is also a declared dependency, before the model: a missing ImageNet folder
is reported before weights are looked for.

`framework=` picks the runtime behind the one SUT (axq_mlperf.backends: pytorch, onnxruntime
or onnxrt, openvino). A run that needs a converted or int8 model (anything but PyTorch at
fp32/bf16/fp16) has it as the planned dependency `runtime_model`, a `model,converted` entry
built from the PyTorch model on demand (entries/model_converted); the child loads it.

Each parameter is declared (and checked) in recipe.json; `check_params` holds the rules
between parameters, checked when the query is resolved, before anything is built.
`expected_seconds` tells `axq plan` about how long a run takes. The verdict is the
`compliance_result` getter (PASS/FAIL); verify_accuracy.txt (TEST01) and
verify_performance.txt sit in the entry as the submission checker expects them.

Getters live in getters.py (they read only `entry.results`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from axq.errors import ParameterError, did_you_mean
from axq_mlperf import backends
from axq_mlperf.explore import explore_plan  # noqa: F401  (the recipe's explore hook)
from axq_mlperf.resources import cluster_resources  # noqa: F401  (the recipe's "resources" hook)

if TYPE_CHECKING:
    from axq.entry import BuildContext, Entry, Params
    from axq_mlperf.config import HarnessConfig

HARNESS = Path(__file__).resolve().parent / "harness.py"
DEVICES = ("cpu", "cuda")
# A compliance run's reference runs: dependency name by mode; the parameters they don't share.
REFERENCES = {"AccuracyOnly": "reference_accuracy", "PerformanceOnly": "reference_performance"}
REFERENCE_FIXED = frozenset({"dataset_name", "task", "loadgen_compliance_test", "loadgen_mode"})
ACHIEVED_MIN_MS = 5000  # the shortest test whose samples/s the next Offline run of its SUT aims at
STARTUP_S = 6  # a child's start: Python, torch, LoadGen, loading and timing the model
VALID_TIMING_S = 20  # a valid Offline run's longer warm-up and timing (harness.VALID_WARMUP_S, VALID_TIMING_S)
# An accuracy run's pass over the data set, about: seconds per sample, and the whole test split.
SAMPLE_S = {"digits": 0.002, "fashion_mnist": 0.0005, "imagenet": 0.02, "digits_detection": 0.002, "coco": 0.5}
FULL_SIZE = {"digits": 450, "fashion_mnist": 10_000, "imagenet": 50_000, "digits_detection": 500, "coco": 5000}


# ----------------------------------------------------------------------------- build


def build(ctx: BuildContext) -> dict:
    """Write user.conf, run the test in a child, read its logs (and verify a compliance run)."""
    from axq_mlperf import child, config, planning, results, system, tasks

    params = ctx.params
    system.require_here(params["system"])  # another machine's results come by axq import, never measured here
    _, labels = ctx.deps["preprocessed"].call("load_arrays")
    refs = reference_runs(ctx) if params["loadgen_compliance_test"] else {}
    settings, calibrate = plan(params, refs, len(labels))
    log_sample_count(ctx, settings, len(labels))
    planning.write_user_conf(ctx.path / "user.conf", params["model_name"], params["loadgen_scenario"], settings)
    run_config, timings_file = cached_timings(ctx, harness_config(ctx, settings, calibrate))
    run_config.write(ctx.path)
    if refs:
        write_audit_config(ctx.path, params)
    measured = params["loadgen_mode"] == "PerformanceOnly"
    expected_s = planning.expected_test_s(params, settings, len(labels))
    report = child.run_child(ctx, HARNESS, params["loadgen_timeout_s"], config.FILE, measure=measured,
                             expected_s=expected_s)
    found = results.collect_results(ctx.path, params["loadgen_scenario"], params["loadgen_mode"],
                                    tasks.get(tasks.of_run(params)),
                                    ctx.deps["preprocessed"])
    if report is not None:
        found.update(results.contention(report))
    if timings_file is not None:
        keep_timings(ctx, timings_file, found, settings)
    if refs:
        found["compliance"] = verify_compliance(ctx, refs)
    if ctx.deps["model"].results.get("random_weights"):
        found["random_weights"] = True  # the accuracy getters refuse: no weights, no meaningful mAP
        if "accuracy_line" in found:
            found["accuracy_line"] = "no accuracy: random weights (no weights_path), for performance runs only"
    ctx.log(results.result_line(found))
    return found


def log_sample_count(ctx: BuildContext, settings: dict, dataset_size: int) -> None:
    """Say when the performance sample count is fewer than loadgen_buffer_size asked for."""
    buffer, count = ctx.params["loadgen_buffer_size"], int(settings["performance_sample_count_override"])
    if buffer is not None and count < buffer:
        ctx.log(f"loadgen_buffer_size={buffer} is more than the {dataset_size} samples of the data set: "
                f"the performance sample count is {count} (as the MLPerf reference harness does)")


def plan(params: Params, refs: dict[str, Entry], dataset_size: int) -> tuple[dict[str, float], list[str]]:
    """Return user.conf values and the targets to time: the reference run's for a compliance run."""
    from axq_mlperf import planning

    if refs:
        return planning.reference_plan((refs["PerformanceOnly"].path / "user.conf").read_text(encoding="utf-8"))
    return planning.conf_plan(params, dataset_size)


def harness_config(ctx: BuildContext, settings: dict, calibrate: list[str]) -> HarnessConfig:
    """Return what the child needs: the parameters declared for it, the test's settings, the two dependency entries."""
    from axq_mlperf.config import HarnessConfig
    from axq_mlperf.planning import MIN_QUERIES

    params = ctx.params
    return HarnessConfig.of(params, user_conf=settings, calibrate=tuple(calibrate),
                            buffer_size=int(settings["performance_sample_count_override"]),
                            min_queries=MIN_QUERIES[params["loadgen_scenario"]],
                            preprocessed=str(ctx.deps["preprocessed"].path), model=str(runtime_model(ctx).path))


def cached_timings(ctx: BuildContext, run: HarnessConfig) -> tuple[HarnessConfig, Path | None]:
    """Return the run with an earlier run's timings of the same SUT here, if cached, and their cache file.

    A run that times targets (or a query floor) reuses the timings of the last one with the
    same model, data, backend, instances and scenario on this machine (ctx.cache), so it
    starts its test at once; an Offline one aims at the samples/s LoadGen measured then. A
    valid (official) run always times afresh. None: nothing to time or cache.
    """
    import dataclasses
    import json

    if not run.calibrate or run.loadgen_execution == "valid":
        return run, None
    path = ctx.cache / f"timings-{run.timing_key(ctx.params['system'])}.json"
    try:
        timings = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return run, path
    ctx.log(f"timed targets from an earlier run of this SUT: {json.dumps(timings)} ({path})")
    return dataclasses.replace(run, timings=timings), path


def keep_timings(ctx: BuildContext, path: Path, found: dict, settings: dict) -> None:
    """Cache the run's timings (an Offline performance run's with LoadGen's samples/s), unless others disturbed it.

    Timings taken on a busy machine would aim the next quiet run too low (and end it before
    min_duration), so a contended run caches nothing. LoadGen's samples/s are kept only from
    a test of at least ACHIEVED_MIN_MS: a shorter one is mostly a fresh process's slow first
    seconds, which aimed the next run too low (a 0.3 s test's figure ended the next one early).
    """
    import json
    import os

    from axq_mlperf.results import TIMINGS

    if found.get("contended") or settings.get("min_duration", 0) < ACHIEVED_MIN_MS:
        return  # a short test times afresh each run, as before the cache
    try:
        timings = json.loads((ctx.path / TIMINGS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    if ctx.params["loadgen_scenario"] == "Offline" and ctx.params["loadgen_mode"] == "PerformanceOnly" \
            and found.get("performance"):
        timings["achieved"] = float(found["performance"])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(timings), encoding="utf-8")
    os.replace(partial, path)


def runtime_model(ctx: BuildContext) -> Entry:
    """Return the model the runtime loads: the converted or quantized one if the run needs one."""
    return ctx.deps.get("runtime_model") or ctx.deps["model"]


# ----------------------------------------------------------------------------- resolve-time hooks


def check_params(params: dict) -> None:
    """Raise ParameterError for values that are each allowed but not together (recipe.json checks each)."""
    device = str(params["device"]).split(":")[0]
    if device not in DEVICES:
        raise ParameterError("device", params["device"], "must be cpu or cuda (or cuda:N)"
                             + did_you_mean(device, DEVICES))
    backends.check(params["framework"], params["device"], params["precision"])
    from axq_mlperf import system

    system.require_device_here(params["device"], params["system"])
    backends.check_knobs(params)
    check_task(params)
    if params["dataset_name"] == "imagenet":
        from axq_mlperf.classifiers import check_model_name

        check_model_name(params["model_name"])
    if params["dataset_name"] == "coco":
        check_coco_detector(params)
    check_compliance(params)
    check_valid_execution(params)


def check_task(params: dict) -> None:
    """Raise ParameterError for a task the data set is not for (digits are classified, not detected)."""
    from axq_mlperf.tasks import for_dataset

    wanted = for_dataset(params["dataset_name"])
    if params.get("task", wanted) != wanted:
        raise ParameterError("task", params["task"], f"is not what dataset_name={params['dataset_name']} is for; "
                             f"it is task={wanted}")


def check_coco_detector(params: dict) -> None:
    """Raise ParameterError for a model that is no COCO detector, or a runtime and precision it isn't made for."""
    from axq_mlperf import detectors

    detectors.check_model_name(params["model_name"])
    detectors.check_runtime(params["model_name"], params["framework"], params["precision"])


def check_compliance(params: dict) -> None:
    """Raise ParameterError for a compliance test asked of an accuracy run."""
    test = params["loadgen_compliance_test"]
    if test is not None and params["loadgen_mode"] != "PerformanceOnly":
        raise ParameterError("loadgen_compliance_test", test, "runs in PerformanceOnly mode (its audit.config "
                             "says so); add loadgen_mode=PerformanceOnly")


def check_valid_execution(params: dict) -> None:
    """Raise ParameterError for a parameter that would make a loadgen_execution=valid run non-compliant."""
    if params["loadgen_execution"] != "valid":
        return
    for name in ("loadgen_duration_s", "loadgen_query_count"):
        if params[name] is not None:
            raise ParameterError(name, params[name], "shortens the run, which loadgen_execution=valid must not "
                                 "do (mlperf.conf sets durations and counts); drop it or use loadgen_execution=test")


def planned_deps(params: dict) -> dict[str, tuple[str, dict]]:
    """Return an ImageNet or COCO run's preprocessed data (the model's own) and a compliance run's references."""
    planned = {}
    runtime_model = backends.runtime_model_query(params)
    if runtime_model is not None:
        planned["runtime_model"] = runtime_model
    if params["dataset_name"] == "imagenet":
        from axq_mlperf.classifiers import preprocessed_query

        planned["preprocessed"] = preprocessed_query(params)
    if params["dataset_name"] == "coco":
        from axq_mlperf.detectors import preprocessed_query as coco_query

        planned["preprocessed"] = coco_query(params)
    return {**planned, **compliance_references(params)}


def compliance_references(params: dict) -> dict[str, tuple[str, dict]]:
    """Return a compliance run's reference runs: the same parameters, no test, AccuracyOnly and PerformanceOnly."""
    if params["loadgen_compliance_test"] is None:
        return {}
    from axq_mlperf.tasks import run_query

    query = run_query(params["dataset_name"])
    same = {k: v for k, v in params.items() if k not in REFERENCE_FIXED}
    return {name: (query, {**same, "loadgen_mode": mode}) for mode, name in REFERENCES.items()}


def expected_seconds(params: dict) -> float:
    """Return about how long the run takes: start-up, then the data set once or the test's duration."""
    from axq_mlperf.planning import SERVER_TEST_QUERIES, TEST_DURATION_S
    from axq_mlperf.scenarios import VALID_RUN_S

    dataset = params["dataset_name"]
    if params["loadgen_mode"] == "AccuracyOnly":
        test_s = SAMPLE_S.get(dataset, 0.02) * (params["loadgen_dataset_size"] or FULL_SIZE.get(dataset, 50_000))
    elif params["loadgen_execution"] == "valid":
        test_s = VALID_RUN_S + 60 + VALID_TIMING_S  # mlperf.conf's 600 s and its tail; a longer timing
    else:
        test_s = params["loadgen_duration_s"] or TEST_DURATION_S
        if params["loadgen_scenario"] == "Server" and params["loadgen_target_qps"]:
            test_s = max(test_s, SERVER_TEST_QUERIES / params["loadgen_target_qps"])
    return STARTUP_S + test_s + 3 * params["harness_baseline_s"]


# ----------------------------------------------------------------------------- compliance


def reference_runs(ctx: BuildContext) -> dict[str, Entry]:
    """Return the reference runs of a compliance run (its planned dependencies), by mode."""
    return {mode: ctx.deps[name] for mode, name in REFERENCES.items()}


def write_audit_config(path: Path, params: Params) -> None:
    """Write the compliance test's audit.config where the LoadGen child will read it."""
    from axq_mlperf.compliance import write_audit_config

    write_audit_config(params["loadgen_compliance_test"], path, params["model_name"], "*")


def verify_compliance(ctx: BuildContext, refs: dict[str, Entry]) -> dict:
    """Verify this compliance run against its reference runs; write the verify_*.txt files here."""
    from axq_mlperf import compliance

    test = ctx.params["loadgen_compliance_test"]
    accuracy, performance = refs["AccuracyOnly"], refs["PerformanceOnly"]
    if test == "TEST01":
        found = compliance.verify_test01(ctx.path, accuracy.path, performance.path, ctx.path)
    else:
        found = compliance.verify_test04(ctx.path, performance.path, ctx.path)
    ctx.log(f"{test}: {found['result']} against {accuracy.name}, {performance.name}")
    return {"test": test, "result": found["result"], "details": found,
            "reference_accuracy": accuracy.name, "reference_performance": performance.name}
