"""Gather cached LoadGen runs into an MLPerf submission tree under the entry's `submission/`.

For each scenario it asks axq for an accuracy run, a performance run and one run per
compliance test (`loadgen_compliance_test=TEST01|TEST04` on the loadgen program), verifies
the compliance runs here (verify files go into this entry, never into the cached runs),
and writes the layout of layout.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LOGS = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json")


def _sibling(name: str) -> Any:
    """Return a module of this recipe by name."""
    from axq.entry import load_code

    return load_code(str(HERE / f"{name}.py"))


def _split(value: Any) -> list[str]:
    """Return a `+`- or comma-separated string (or a list) as a list of stripped names."""
    items = value.replace("+", ",").split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _run(params: dict, scenario: str, extra: str) -> Any:
    """Return the loadgen output entry of one run, built if missing."""
    import axq

    return axq.byquery(f"loadgen_output,{params['benchmark_query']},loadgen_scenario={scenario},{extra}")


def verify(test: str, run: Any, accuracy: Any, performance: Any, target: Path) -> Path:
    """Copy a compliance run's logs into target and verify them there; return target."""
    compliance = _sibling("compliance")
    target.mkdir(parents=True, exist_ok=True)
    for name in LOGS:
        if (run.path / name).exists():
            shutil.copy2(run.path / name, target / name)
    if test == "TEST01":
        compliance.verify_test01(target, accuracy.path, performance.path, target)
    else:
        compliance.verify_test04(target, performance.path, target)
    return target


def run_spec(ctx: Any, scenario: str) -> Any:
    """Build (or reuse) the runs of one scenario and return its RunSpec."""
    params = ctx.params
    accuracy = _run(params, scenario, "loadgen_mode=AccuracyOnly")
    performance = _run(params, scenario, "loadgen_mode=PerformanceOnly")
    compliance = {}
    for test in _split(params["compliance_tests"]):
        run = _run(params, scenario, f"loadgen_mode=PerformanceOnly,loadgen_compliance_test={test}")
        compliance[test] = verify(test, run, accuracy, performance, ctx.path / "verify" / scenario / test)
    ctx.log(f"{scenario}: accuracy {accuracy.name}, performance {performance.name}")
    return _sibling("layout").RunSpec(
        benchmark=params["benchmark"], scenario=scenario, performance_dir=performance.path,
        accuracy_dir=accuracy.path, accuracy_txt=str(accuracy.get("accuracy_report")),
        user_conf=(performance.path / "user.conf").read_text(), reproduce=reproduce(params),
        compliance=compliance, mlperf_model=params["mlperf_model"] or None)


def reproduce(params: dict) -> str:
    """Return the axq command that rebuilds this submission."""
    fixed = ("submitter", "system", "division", "benchmark_query", "benchmark", "scenarios", "compliance_tests")
    query = ",".join(f"{k}={_text(params[k])}" for k in fixed)
    return f"axq byquery mlperf_submission,{query} , get submission_path"


def _text(value: Any) -> str:
    """Return a parameter value as query text."""
    return "+".join(value) if isinstance(value, list) else str(value).replace(",", "+")


def build(ctx: Any) -> dict:
    """Run what is missing, verify the compliance runs and write submission/."""
    params, layout = ctx.params, _sibling("layout")
    runs = [run_spec(ctx, scenario) for scenario in _split(params["scenarios"])]
    system = layout.system_description({"system_name": params["system"], **params["system_overrides"]})
    root = layout.write_submission_tree(ctx.path / "submission", params["division"], params["submitter"],
                                        params["system"], runs, system, params["layout"])
    verdicts = {f"{r.scenario}/{t}": _verdict(r.compliance[t]) for r in runs for t in r.compliance}
    return {"submission_root": str(root.relative_to(ctx.path)), "compliance": verdicts}


def _verdict(directory: Path) -> str:
    """Return PASS if every verify_*.txt in directory says TEST PASS, else FAIL."""
    texts = [p.read_text() for p in Path(directory).glob("verify_*.txt")]
    return "PASS" if texts and all("TEST PASS" in t for t in texts) else "FAIL"


def submission_path(entry: Any) -> str:
    """Return the directory holding the division folder (pass it to the checker's --input)."""
    return str(entry.path / "submission")
