"""Gather cached LoadGen runs into an MLPerf submission tree under the entry's `submission/`.

Every run it holds is a planned dependency (`planned_deps`, so `axq plan` lists them all
and they are built first): per scenario an accuracy run, a performance run and one run per
compliance test (`loadgen_compliance_test=TEST01|TEST04` on the loadgen program, which
verifies itself against the same two reference runs and holds its verify_*.txt). The
build checks the compliance runs used those very references, and writes the layout of
axq_mlperf.submission into the entry's `submission/`. Runs are `loadgen_execution=valid`
(the official 600 s runs) unless the query says `test`.

The runs' task (axq_mlperf.tasks) says what accuracy.txt holds: what MLPerf's accuracy
script for it prints (accuracy-imagenet.py's `accuracy=...%`, accuracy-coco.py's COCOeval
summary and `mAP=...%`), the lines the checker's ACC_PATTERN reads. The tree's benchmark is
`benchmark=` (`resnet`, `retinanet`, `yolo-99`, ...), else named after the runs' data set
(digits, fashion_mnist, digits_detection).

Custom models (the digits classifier and detector, Fashion-MNIST, COCO's ssd_mobilenet) go
in the open division with no model mapping (`mlperf_model` null): they are not ResNet50 or
YOLO, and mapping them makes the checker hold them to that benchmark's accuracy run
(ImageNet's 50,000 samples at 76.46% top-1, COCO's 1,525 at 53.4 mAP), which they can never
meet. Set `mlperf_model` only for a model that really is one of MLPerf's. The closed
division takes only a benchmark's own model (axq_mlperf.submission.BENCHMARK_MODELS), refused
when the query is resolved, before any run is built (`check_runs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from axq.errors import BuildError, ParameterError, did_you_mean

if TYPE_CHECKING:
    from axq.entry import BuildContext, Entry, Params


def _split(value: Any) -> list[str]:
    """Return a `+`- or comma-separated string (or a list) as a list of stripped names."""
    items = value.replace("+", ",").split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def run_queries(params: dict) -> dict[str, str]:
    """Return every run the submission holds, by dependency name: per scenario accuracy, performance, tests."""
    queries = {}
    for scenario in _split(params["scenarios"]):
        base = (f"loadgen_output,{params['benchmark_query']},loadgen_scenario={scenario},"
                f"loadgen_execution={params['loadgen_execution']},system={params['measuring_system']},loadgen_mode=")
        queries[f"{scenario}_accuracy"] = base + "AccuracyOnly"
        queries[f"{scenario}_performance"] = base + "PerformanceOnly"
        for test in _split(params["compliance_tests"]):
            queries[f"{scenario}_{test}"] = f"{base}PerformanceOnly,loadgen_compliance_test={test}"
    return queries


def planned_deps(params: dict) -> dict[str, str]:
    """Return the runs to build before the tree (planned dependencies: in the identity and `axq plan`)."""
    return run_queries(params)


def check_params(params: dict) -> None:
    """Raise ParameterError for scenarios, tests, overrides or a division the submission can't take."""
    from axq_mlperf.scenarios import COMPLIANCE_TESTS, SCENARIOS

    for name, known in (("scenarios", SCENARIOS), ("compliance_tests", COMPLIANCE_TESTS)):
        for item in _split(params[name]):
            if item not in known:
                raise ParameterError(name, params[name], f"`{item}` is not one of {', '.join(known)}"
                                     + did_you_mean(item, known))
    if not _split(params["scenarios"]):
        raise ParameterError("scenarios", params["scenarios"], "names no scenario; e.g. scenarios=Offline+Server")
    overrides(params["system_overrides"])
    check_benchmark(params)


def check_benchmark(params: dict) -> None:
    """Raise ParameterError for an unknown mlperf_model, a closed custom model, or a layout without the benchmark."""
    from axq_mlperf.submission import CLOSED_BENCHMARKS, layout_problem

    model, benchmark = params["mlperf_model"], params["benchmark"]
    if model is not None and model not in CLOSED_BENCHMARKS:
        raise ParameterError("mlperf_model", model, "is none of MLPerf's benchmark models (resnet, retinanet, "
                             "yolo-99, ...)" + did_you_mean(model, sorted(CLOSED_BENCHMARKS)))
    if params["division"] == "closed" and benchmark not in CLOSED_BENCHMARKS:
        raise ParameterError("division", "closed", f"takes only the MLPerf benchmarks' own models (benchmark=resnet, "
                             f"yolo-99, ...); `{benchmark or 'null'}` is not one of them: use division=open")
    problem = layout_problem(model or benchmark or "", params["layout"])  # the mapped model's rules, else the name's
    if problem:
        raise ParameterError("layout", params["layout"], problem)


def check_runs(params: dict, runs: dict[str, dict]) -> None:
    """Raise ParameterError for a closed submission whose runs are not the benchmark's own model."""
    from axq_mlperf.submission import closed_problem

    if params["division"] != "closed":
        return
    for run in runs.values():
        problem = closed_problem(params["benchmark"], run["dataset_name"], run["model_name"])
        if problem:
            raise ParameterError("division", "closed", problem)


def expected_seconds(params: dict) -> float:
    """Return about how long writing the tree takes (its runs are dependencies with their own estimates)."""
    return 2.0


def compliance_run(ctx: BuildContext, scenario: str, test: str, accuracy: Entry, performance: Entry) -> Path:
    """Return the directory of a compliance run verified against these very reference runs."""
    run = ctx.deps[f"{scenario}_{test}"]
    found = run.get("compliance")
    used = (found["reference_accuracy"], found["reference_performance"])
    if used != (accuracy.name, performance.name):
        raise BuildError(f"{run.name} was verified against {' and '.join(used)}, not the runs this submission "
                         f"holds ({accuracy.name}, {performance.name})")
    return Path(run.path)


def run_spec(ctx: BuildContext, scenario: str) -> Any:
    """Return the RunSpec of one scenario from its runs (dependencies built before this build)."""
    from axq_mlperf import submission

    params = ctx.params
    accuracy, performance = ctx.deps[f"{scenario}_accuracy"], ctx.deps[f"{scenario}_performance"]
    compliance = {test: compliance_run(ctx, scenario, test, accuracy, performance)
                  for test in _split(params["compliance_tests"])}
    ctx.log(f"{scenario}: accuracy {accuracy.name}, performance {performance.name}")
    name = benchmark_name(params, accuracy)
    return submission.RunSpec(
        benchmark=name, scenario=scenario, performance_dir=performance.path,
        accuracy_dir=accuracy.path, accuracy_txt=accuracy_text(accuracy),
        user_conf=(performance.path / "user.conf").read_text(), reproduce=reproduce(params),
        compliance=compliance, mlperf_model=params["mlperf_model"] or None, notes=notes(params, name))


def benchmark_name(params: Params, run: Entry) -> str:
    """Return the tree's benchmark name: `benchmark=`, else the run's data set (digits, digits_detection)."""
    return str(params["benchmark"] or run.params["dataset_name"])


def accuracy_text(run: Entry) -> str:
    """Return what MLPerf's accuracy script for the run's task prints of it: the tree's accuracy.txt."""
    from axq_mlperf import tasks

    return tasks.get(tasks.of_run(run.params)).accuracy_text(run.get("accuracy_results"))


def notes(params: Params, name: str) -> str:
    """Return what a reader of the README must know: the division and the kind of run."""
    lines = []
    if params["division"] == "open" and not params["mlperf_model"]:
        lines.append(f"Open division: `{name}` is a custom model, not one of MLPerf's "
                     f"benchmark models, so it is submitted with no model mapping.")
    if params["loadgen_execution"] != "valid":
        lines.append("These are short test runs (`loadgen_execution=test`), not the official 600 s runs: "
                     "the checker rejects their durations, seeds and query counts.")
    return "\n".join(lines)


def reproduce(params: Params) -> str:
    """Return the axq command that rebuilds this submission."""
    fixed = ("submitter", "system", "division", "benchmark_query", "benchmark", "scenarios", "compliance_tests",
             "loadgen_execution", "mlperf_model", "layout")
    query = ",".join(f"{k}={_text(params[k])}" for k in fixed)
    return f"axq byquery mlperf_submission,{query} , get submission_path"


def _text(value: Any) -> str:
    """Return a parameter value as query text (quoted when it holds a comma)."""
    if isinstance(value, list):
        return "+".join(value)
    return "null" if value is None else (f"'{value}'" if "," in str(value) else str(value))


def build(ctx: BuildContext) -> dict:
    """Run what is missing, verify the compliance runs and write submission/."""
    from axq_mlperf import submission

    params = ctx.params
    runs = [run_spec(ctx, scenario) for scenario in _split(params["scenarios"])]
    system = submission.system_description({"system_name": params["system"], **overrides(params["system_overrides"])})
    root = submission.write_submission_tree(ctx.path / "submission", params["division"], params["submitter"],
                                            params["system"], runs, system, params["layout"])
    verdicts = {f"{r.scenario}/{t}": _verdict(r.compliance[t]) for r in runs for t in r.compliance}
    return {"submission_root": str(root.relative_to(ctx.path)), "compliance": verdicts}


def overrides(text: str) -> dict:
    """Return system_overrides (a JSON object as text: query values can't be dicts) as a dict."""
    import json

    try:
        found = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        found = error
    if not isinstance(found, dict):
        raise ParameterError("system_overrides", text, "must be a JSON object, e.g. '{\"cooling\": \"liquid\"}'")
    return found


def _verdict(directory: Path) -> str:
    """Return PASS if every verify_*.txt in directory says TEST PASS, else FAIL."""
    texts = [p.read_text() for p in Path(directory).glob("verify_*.txt")]
    return "PASS" if texts and all("TEST PASS" in t for t in texts) else "FAIL"

