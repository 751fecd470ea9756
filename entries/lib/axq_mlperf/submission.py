"""Lay cached runs out as an MLPerf Inference submission tree the official checker accepts.

Paths follow mlcommons/inference tools/submission/submission_checker/constants.py
(checked at commit b66003e, 2026-08). Two layouts exist there:

- "v5.1" (the checker's default `--version`): results/ holds performance/run_1 and
  accuracy; compliance/{system}/{benchmark}/{scenario}/TEST0x; measurements/{system}/
  {benchmark}/{scenario}/ holds user.conf, README.md and `{system}_{scenario}.json`;
  the code lives in code/{benchmark}.
- "v6.0" and "v6.1": everything of a scenario under results/{system}/{benchmark}/
  {scenario}/ (TEST0x, measurements.json, user.conf, README.md); code in src/{benchmark}.

The default is v6.1: the mlcommons-loadgen 6.0.17 wheel's embedded mlperf.conf carries the
RNG seeds that the checker's v6.1 config expects (qsl 2085463073848966840, sample index
2747215439041700203, schedule 16159082839903944936); its v5.1 and v6.0 configs expect
other seeds, so runs with this wheel pass the seed check only as v6.1 (`--version v6.1`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from axq_mlperf.logs import ACCURACY, DETAIL, SUMMARY
from axq_mlperf.truncation import truncate_accuracy_log

LAYOUTS = ("v5.1", "v6.0", "v6.1")
PERF_FILES = (SUMMARY, DETAIL)
ACC_LOG = ACCURACY
# Benchmarks the closed division knows (constants.py MODEL_CONFIG, v5.1 and v6.0 models).
CLOSED_BENCHMARKS = frozenset({
    "resnet", "retinanet", "bert-99", "bert-99.9", "dlrm-v2-99", "dlrm-v2-99.9", "3d-unet-99",
    "3d-unet-99.9", "gpt-j-99", "gpt-j-99.9", "llama2-70b-99", "llama2-70b-99.9",
    "llama2-70b-interactive-99", "llama2-70b-interactive-99.9", "stable-diffusion-xl",
    "mixtral-8x7b", "llama3.1-405b", "llama3.1-8b", "llama3.1-8b-edge", "rgat", "pointpainting",
    "deepseek-r1", "whisper", "yolo-95", "yolo-99", "gpt-oss-120b", "qwen3-vl-235b-a22b",
    "dlrm-v3", "wan-2.2-t2v-a14b"})
MEASUREMENTS_DEFAULTS = {"input_data_types": "fp32", "retraining": "no",
                         "starting_weights_filename": "N/A", "weight_data_types": "fp32",
                         "weight_transformations": "none"}


class BenchmarkModel(NamedTuple):
    """A closed benchmark's own model, axq's runs of it, and the checker layouts that know the benchmark."""

    what: str  # the model of mlcommons/inference's reference implementation
    runs: frozenset[tuple[str, str]]  # axq's runs of that very model, as (dataset_name, model_name)
    layouts: tuple[str, ...]  # constants.py MODEL_CONFIG[layout]["models"] holds it


YOLO_RUNS = frozenset({("coco", "yolo11l")})  # model_name=yolo: ultralytics' YOLO11l on a COCO folder (coco_safe)
# The closed division takes only these runs of these benchmarks (constants.py at commit b66003e).
BENCHMARK_MODELS = {
    "resnet": BenchmarkModel("ResNet50-v1.5 on ImageNet", frozenset({("imagenet", "resnet50")}), LAYOUTS),
    "retinanet": BenchmarkModel("RetinaNet ResNeXt50-32x4d FPN on MLPerf's OpenImages subset", frozenset(),
                                ("v5.1", "v6.0")),
    "yolo-99": BenchmarkModel("YOLOv11l on MLPerf's safe COCO subset, at 99% of its 53.4 mAP", YOLO_RUNS,
                              ("v6.0", "v6.1")),
    "yolo-95": BenchmarkModel("YOLOv11l on MLPerf's safe COCO subset, at 95% of its 53.4 mAP", YOLO_RUNS,
                              ("v6.0", "v6.1")),
}


@dataclass(frozen=True)
class RunSpec:
    """One benchmark and scenario of a submission: where its runs are and how to redo them.

    `compliance` maps a test (TEST01, TEST04) to the directory of its LoadGen run, which
    also holds the verify_*.txt files that axq_mlperf.compliance.verify_test0x wrote there.
    `accuracy_txt` is what MLPerf's accuracy script printed for the task (the run's
    Task.accuracy_text: `accuracy=97.000%, good=..., total=...`, or COCOeval's summary and
    `mAP=84.912%`).
    """

    benchmark: str
    scenario: str
    performance_dir: Path
    accuracy_dir: Path
    accuracy_txt: str
    user_conf: str
    reproduce: str
    compliance: dict[str, Path] = field(default_factory=dict)
    measurements: dict[str, Any] = field(default_factory=dict)
    mlperf_model: str | None = None  # the official benchmark an open-division model maps to
    notes: str = ""  # said in the scenario's README (division, kind of run)


def check_division(division: str, runs: list[RunSpec]) -> None:
    """Raise BuildError for a division the runs cannot enter (unknown models need open)."""
    from axq.errors import BuildError

    if division not in ("open", "closed"):
        raise BuildError(f"division must be `open` or `closed`, not `{division}`")
    unknown = sorted({r.benchmark for r in runs if r.benchmark not in CLOSED_BENCHMARKS})
    if division == "closed" and unknown:
        raise BuildError(
            f"the closed division only takes the MLPerf benchmarks' own models; "
            f"{', '.join(unknown)} is not one of them: use --division=open")


def closed_problem(benchmark: str, dataset_name: str, model_name: str) -> str:
    """Return why runs of model_name on dataset_name cannot be `benchmark` in the closed division, or ""."""
    known = BENCHMARK_MODELS.get(benchmark)
    if known is not None and (dataset_name, model_name) in known.runs:
        return ""
    what = known.what if known else "a model axq does not run"
    return (f"takes only `{benchmark}`'s own model ({what}), not {model_name} on {dataset_name}: "
            f"use division=open (mlperf_model={benchmark} maps the model to it)")


def layout_problem(benchmark: str, layout: str) -> str:
    """Return why the checker's `layout` rules cannot judge `benchmark` (they do not name it), or ""."""
    known = BENCHMARK_MODELS.get(benchmark)
    if known is None or layout in known.layouts:
        return ""
    return f"the checker's {layout} rules have no `{benchmark}`: use layout={' or '.join(known.layouts)}"


def scenario_dirs(root: Path, layout: str, system: str, run: RunSpec) -> dict[str, Path]:
    """Return the results, compliance and measurements directories of one run."""
    tail = Path(system) / run.benchmark / run.scenario
    results = root / "results" / tail
    if layout == "v5.1":
        return {"results": results, "compliance": root / "compliance" / tail,
                "measurements": root / "measurements" / tail}
    return {"results": results, "compliance": results, "measurements": results}


def copy_files(source: Path, target: Path, names: tuple[str, ...]) -> None:
    """Copy the named files from source into target (made if missing)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(Path(source) / name, target / name)


def write_accuracy(run: RunSpec, target: Path) -> str:
    """Write accuracy/ with the logs, accuracy.txt and the truncated accuracy log; return the hash."""
    copy_files(run.accuracy_dir, target, PERF_FILES)
    (target / "accuracy.txt").write_text(run.accuracy_txt.rstrip("\n") + "\n", encoding="utf-8")
    return truncate_accuracy_log(Path(run.accuracy_dir) / ACC_LOG, target / "accuracy.txt")


def write_compliance(test: str, source: Path, target: Path) -> None:
    """Write one TEST0x directory: verify files, performance/run_1 logs, TEST01's accuracy/."""
    target.mkdir(parents=True, exist_ok=True)
    verify = ("verify_accuracy.txt", "verify_performance.txt") if test == "TEST01" else ("verify_performance.txt",)
    copy_files(source, target, verify)
    copy_files(source, target / "performance" / "run_1", PERF_FILES)
    if test == "TEST01":
        accuracy = target / "accuracy"
        accuracy.mkdir(parents=True, exist_ok=True)
        report = (Path(source) / "verify_accuracy.txt").read_text(encoding="utf-8")
        (accuracy / "accuracy.txt").write_text(report.rstrip("\n") + "\n", encoding="utf-8")
        truncate_accuracy_log(Path(source) / ACC_LOG, accuracy / "accuracy.txt")


def write_measurements(run: RunSpec, target: Path, layout: str, system: str) -> None:
    """Write user.conf, README.md and the measurements JSON of one run."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "user.conf").write_text(run.user_conf.rstrip("\n") + "\n", encoding="utf-8")
    (target / "README.md").write_text(readme(run), encoding="utf-8")
    name = f"{system}_{run.scenario}.json" if layout == "v5.1" else "measurements.json"
    fields = MEASUREMENTS_DEFAULTS | run.measurements
    (target / name).write_text(json.dumps(fields, indent=2) + "\n", encoding="utf-8")


def readme(run: RunSpec) -> str:
    """Return a scenario README: what ran and the command that reproduces it."""
    notes = f"{run.notes}\n\n" if run.notes else ""
    return (f"# {run.benchmark} {run.scenario}\n\n{notes}Produced with axq. To reproduce:\n\n"
            f"```\n{run.reproduce}\n```\n")


def write_run(root: Path, layout: str, system: str, run: RunSpec) -> None:
    """Write every file of one benchmark and scenario."""
    dirs = scenario_dirs(root, layout, system, run)
    copy_files(run.performance_dir, dirs["results"] / "performance" / "run_1", PERF_FILES)
    write_accuracy(run, dirs["results"] / "accuracy")
    for test, source in sorted(run.compliance.items()):
        write_compliance(test, Path(source), dirs["compliance"] / test)
    write_measurements(run, dirs["measurements"], layout, system)


def write_code_readmes(root: Path, layout: str, runs: list[RunSpec]) -> None:
    """Write code/{benchmark}/README.md (src/ from v6.0) naming the commands used."""
    for benchmark in sorted({r.benchmark for r in runs}):
        directory = root / ("code" if layout == "v5.1" else "src") / benchmark
        directory.mkdir(parents=True, exist_ok=True)
        commands = "\n".join(r.reproduce for r in runs if r.benchmark == benchmark)
        (directory / "README.md").write_text(
            f"# {benchmark}\n\nBuilt and run by axq recipes "
            f"`loadgen_program` and `mlperf_submission`.\n\n```\n{commands}\n```\n", encoding="utf-8")


def write_submission_tree(out_dir: Path, division: str, submitter: str, system: str,
                          runs: list[RunSpec], system_json: dict, layout: str = "v6.1") -> Path:
    """Write the submission tree under out_dir and return its {division}/{submitter} directory."""
    from axq.errors import BuildError

    check_division(division, runs)
    if layout not in LAYOUTS:
        raise BuildError(f"unknown submission layout `{layout}`; expected one of {', '.join(LAYOUTS)}")
    root = Path(out_dir) / division / submitter
    for run in runs:
        write_run(root, layout, system, run)
    write_code_readmes(root, layout, runs)
    (root / "systems").mkdir(parents=True, exist_ok=True)
    description = system_json | {"division": division, "submitter": submitter}
    (root / "systems" / f"{system}.json").write_text(json.dumps(description, indent=2) + "\n")
    write_model_mapping(root, runs)
    return root


def write_model_mapping(root: Path, runs: list[RunSpec]) -> None:
    """Write model_mapping.json naming the official benchmark each custom model stands for."""
    mapping = {r.benchmark: r.mlperf_model for r in runs if r.mlperf_model and r.benchmark != r.mlperf_model}
    if mapping:
        (root / "model_mapping.json").write_text(json.dumps(mapping, indent=2) + "\n")


# ---------------------------------------------------------------- systems/{system}.json

SYSTEM_FIELDS = (  # submission_checker constants.py SYSTEM_DESC_REQUIRED_FIELDS
    "division", "submitter", "status", "system_name", "number_of_nodes",
    "host_processor_model_name", "host_processors_per_node", "host_processor_core_count",
    "host_memory_capacity", "host_storage_capacity", "host_storage_type",
    "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack",
    "host_processor_frequency", "host_processor_caches", "host_memory_configuration",
    "host_processor_interconnect", "host_networking", "host_networking_topology",
    "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration",
    "accelerator_on-chip_memories", "cooling", "hw_notes", "sw_notes",
    "host_network_card_count", "system_type_detail")


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or platform's guess)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def memory_gb() -> str:
    """Return the machine's memory from /proc/meminfo, as `N GB`."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 ** 2:.0f} GB"
    except OSError:
        pass
    return "unknown"


def package_version(name: str) -> str:
    """Return an installed distribution's version, or `not installed`."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def accelerator() -> dict[str, Any]:
    """Return the accelerator fields: the first CUDA device through torch, else N/A."""
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return {"accelerators_per_node": torch.cuda.device_count(), "accelerator_model_name": props.name,
                    "accelerator_memory_capacity": f"{props.total_memory / 1024 ** 3:.0f} GB"}
    except ImportError:
        pass
    # "0", not 0: the checker wants a truthy answer for accelerators_per_node.
    return {"accelerators_per_node": "0", "accelerator_model_name": "N/A", "accelerator_memory_capacity": "N/A"}


def storage_gb() -> str:
    """Return the size of the disk holding the current directory, as `N GB`."""
    return f"{shutil.disk_usage('.').total / 1024 ** 3:.0f} GB"


def system_description(overrides: dict) -> dict:
    """Return a systems/{system}.json description of this machine, overrides applied last."""
    import os
    import platform

    found = {
        "status": "available", "system_name": platform.node() or "axq-system", "number_of_nodes": 1,
        "host_processor_model_name": cpu_model(), "host_processors_per_node": 1,
        "host_processor_core_count": os.cpu_count() or 1, "host_memory_capacity": memory_gb(),
        "host_storage_capacity": storage_gb(), "host_storage_type": "N/A",
        "framework": f"PyTorch {package_version('torch')}",
        "operating_system": f"{platform.system()} {platform.release()}",
        "system_type": "edge", "host_memory_configuration": "N/A", "host_networking": "N/A",
        "host_network_card_count": "N/A", "host_networking_topology": "N/A",
        "accelerator_host_interconnect": "N/A", "accelerator_memory_configuration": "N/A",
        "accelerator_interconnect": "N/A", "cooling": "air",
        "other_software_stack": f"Python {platform.python_version()}, mlcommons-loadgen "
                                f"{package_version('mlcommons-loadgen')}, numpy {package_version('numpy')}",
        "sw_notes": "Built and run with axq", **accelerator()}
    blank = dict.fromkeys(SYSTEM_FIELDS, "")
    return blank | {"division": "open", "submitter": "axq-user"} | found | dict(overrides)
