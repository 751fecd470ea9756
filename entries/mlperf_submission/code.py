"""Gather cached LoadGen runs into an MLPerf submission tree under the entry's `submission/`.

For each scenario it asks axq (`ctx.byquery`, building what is missing) for an accuracy
run, a performance run and one run per compliance test (`loadgen_compliance_test=TEST01|
TEST04` on the loadgen program, which verifies itself against the same two reference runs
and holds its verify_*.txt), checks the compliance runs used those very references, and
writes the layout of layout.py into the entry's `submission/`. Runs are
`loadgen_execution=valid` (the official 600 s runs) unless the query says `test`.

Custom models (digits, Fashion-MNIST) go in the open division with no model mapping
(`mlperf_model` null): they are not ResNet50, and mapping them to `resnet` makes the
checker hold them to ImageNet's accuracy run (50,000 samples, 76.46% top-1), which they
can never meet. Set `mlperf_model` only for a model that really is one of MLPerf's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _sibling(name: str) -> Any:
    """Return a module of this recipe by name."""
    from axq.entry import load_code

    return load_code(str(HERE / f"{name}.py"))


def _split(value: Any) -> list[str]:
    """Return a `+`- or comma-separated string (or a list) as a list of stripped names."""
    items = value.replace("+", ",").split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _run(ctx: Any, scenario: str, extra: str) -> Any:
    """Return the loadgen output entry of one run, built if missing (recorded as used)."""
    params = ctx.params
    return ctx.byquery(f"loadgen_output,{params['benchmark_query']},loadgen_scenario={scenario},"
                       f"loadgen_execution={params['loadgen_execution']},{extra}")


def compliance_run(ctx: Any, scenario: str, test: str, accuracy: Any, performance: Any) -> Path:
    """Return the directory of a verified compliance run made against these reference runs."""
    from axq.errors import BuildError

    run = _run(ctx, scenario, f"loadgen_mode=PerformanceOnly,loadgen_compliance_test={test}")
    found = run.get("compliance")
    used = (found["reference_accuracy"], found["reference_performance"])
    if used != (accuracy.name, performance.name):
        raise BuildError(f"{run.name} was verified against {' and '.join(used)}, not the runs this submission "
                         f"holds; remove it (axq rm {run.name}) and build again")
    return Path(run.path)


def run_spec(ctx: Any, scenario: str) -> Any:
    """Build (or reuse) the runs of one scenario and return its RunSpec."""
    params = ctx.params
    accuracy = _run(ctx, scenario, "loadgen_mode=AccuracyOnly")
    performance = _run(ctx, scenario, "loadgen_mode=PerformanceOnly")
    compliance = {test: compliance_run(ctx, scenario, test, accuracy, performance)
                  for test in _split(params["compliance_tests"])}
    ctx.log(f"{scenario}: accuracy {accuracy.name}, performance {performance.name}")
    return _sibling("layout").RunSpec(
        benchmark=params["benchmark"], scenario=scenario, performance_dir=performance.path,
        accuracy_dir=accuracy.path, accuracy_txt=str(accuracy.get("accuracy_report")),
        user_conf=(performance.path / "user.conf").read_text(), reproduce=reproduce(params),
        compliance=compliance, mlperf_model=params["mlperf_model"] or None, notes=notes(params))


def notes(params: dict) -> str:
    """Return what a reader of the README must know: the division and the kind of run."""
    lines = []
    if params["division"] == "open" and not params["mlperf_model"]:
        lines.append(f"Open division: `{params['benchmark']}` is a custom model, not one of MLPerf's "
                     f"benchmark models, so it is submitted with no model mapping.")
    if params["loadgen_execution"] != "valid":
        lines.append("These are short test runs (`loadgen_execution=test`), not the official 600 s runs: "
                     "the checker rejects their durations, seeds and query counts.")
    return "\n".join(lines)


def reproduce(params: dict) -> str:
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


def build(ctx: Any) -> dict:
    """Run what is missing, verify the compliance runs and write submission/."""
    params, layout = ctx.params, _sibling("layout")
    runs = [run_spec(ctx, scenario) for scenario in _split(params["scenarios"])]
    system = layout.system_description({"system_name": params["system"], **overrides(params["system_overrides"])})
    root = layout.write_submission_tree(ctx.path / "submission", params["division"], params["submitter"],
                                        params["system"], runs, system, params["layout"])
    verdicts = {f"{r.scenario}/{t}": _verdict(r.compliance[t]) for r in runs for t in r.compliance}
    return {"submission_root": str(root.relative_to(ctx.path)), "compliance": verdicts}


def overrides(text: str) -> dict:
    """Return system_overrides (a JSON object as text: query values can't be dicts) as a dict."""
    import json

    from axq.errors import BuildError

    try:
        found = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        found = error
    if not isinstance(found, dict):
        raise BuildError(f"system_overrides must be a JSON object, e.g. '{{\"cooling\": \"liquid\"}}', not {text!r}")
    return found


def _verdict(directory: Path) -> str:
    """Return PASS if every verify_*.txt in directory says TEST PASS, else FAIL."""
    texts = [p.read_text() for p in Path(directory).glob("verify_*.txt")]
    return "PASS" if texts and all("TEST PASS" in t for t in texts) else "FAIL"


def submission_path(entry: Any) -> str:
    """Return the directory holding the division folder (pass it to the checker's --input)."""
    return str(entry.path / "submission")
