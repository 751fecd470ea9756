"""The MLPerf one-liners end to end through the kernel: the real CLI, real LoadGen, real data.

One work collection per module, so the digits chain (dataset, preprocessing, training) is
built once. Accuracy is checked against a count made here from mlperf_log_accuracy.json
and the preprocessed labels, not taken from the recipe's own decoding.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import axq
from axq.errors import BuildError, NoProducerError
from axq.progress import Reporter
from tests.conftest import REPO
from tests.imagenet_fixture import make_imagenet_dir, make_resnet50_weights

DIGITS = "loadgen_output,classified_digits,framework=pytorch"
QUIET = Reporter("quiet")


def axq_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the installed CLI as a user would (quiet), environment inherited."""
    return subprocess.run([sys.executable, "-m", "axq", "--quiet", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)


def decoded_accuracy(entry: axq.entry.Entry) -> tuple[int, int]:
    """Count correct answers in mlperf_log_accuracy.json against the preprocessed labels."""
    records = json.loads((entry.path / "mlperf_log_accuracy.json").read_text())
    labels = np.load(entry.dep("preprocessed").path / "labels.npy")
    answers = {r["qsl_idx"]: int(np.frombuffer(bytes.fromhex(r["data"]), dtype=np.int64)[0]) for r in records}
    return sum(answers[i] == labels[i] for i in answers), len(answers)


def test_digits_accuracy_as_typed(collection: Path) -> None:
    query = f"{DIGITS},loadgen_mode=AccuracyOnly,loadgen_scenario=Offline"
    result = axq_cli("byquery", query, ",", "get", "accuracy")
    assert result.returncode == 0, result.stderr
    entry = axq.byquery(query)
    good, total = decoded_accuracy(entry)
    assert total == 450 and good / total >= 0.95
    assert float(result.stdout) == pytest.approx(100 * good / total)
    report = axq_cli("byquery", query, ",", "get", "accuracy_report").stdout.strip()
    assert report == f"accuracy={100 * good / total:.3f}%, good={good}, total={total}"
    for name in ("user.conf", "mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"):
        assert (entry.path / name).stat().st_size > 0


@pytest.mark.parametrize(
    ("settings", "unit_check"),
    [
        ("loadgen_scenario=Offline,loadgen_target_qps=2000", lambda v: v > 100),  # samples/s
        ("loadgen_scenario=SingleStream,loadgen_target_latency=1", lambda v: 1e3 < v < 1e9),  # ns
        ("loadgen_scenario=Server,loadgen_target_qps=500", lambda v: 300 < v < 700),  # ~ the target
        ("loadgen_scenario=MultiStream,loadgen_target_latency=5", lambda v: 1e3 < v < 1e9),  # ns
    ],
)
def test_performance_lines_as_typed_are_valid(collection: Path, settings: str, unit_check) -> None:
    query = f"{DIGITS},loadgen_mode=PerformanceOnly,{settings}"
    entry = axq.byquery(query, reporter=QUIET)
    assert entry.get("result_valid") is True, entry.get("performance_report")
    assert unit_check(entry.get("performance"))
    assert entry.get("summary")["Result is"] == "VALID"
    assert "VALID" in entry.get("performance_report")


def test_cached_getter_imports_nothing_heavy(collection: Path) -> None:
    query = f"{DIGITS},loadgen_mode=AccuracyOnly,loadgen_scenario=Offline"
    assert axq_cli("byquery", query, ",", "get", "accuracy").returncode == 0
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "axq", "byquery", query, ",", "get",
                             "accuracy_report"], cwd=REPO, capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "numpy", "mlperf_loadgen", "lark"}
    assert result.stdout.startswith("accuracy=")


def test_invalid_run_is_kept_marked_and_exits_1(collection: Path) -> None:
    query = f"{DIGITS},loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,loadgen_target_qps=20," \
            "loadgen_query_count=1"
    result = axq_cli("byquery", query, ",", "get", "performance")
    assert result.returncode == 1
    assert "is marked INVALID: LoadGen: the test ended before min_duration (1000 ms)" in result.stderr
    assert float(result.stdout) > 0
    assert axq.byquery(query).get("result_valid") is False  # kept, cached


def test_bad_scenario_is_one_clear_line(collection: Path) -> None:
    result = axq_cli("byquery", f"{DIGITS},loadgen_scenario=Ofline", ",", "get", "accuracy")
    assert result.returncode == 2  # refused while resolving: a ParameterError
    assert "did you mean `Offline`" in result.stderr and "Traceback" not in result.stderr
    assert axq.list_entries("loadgen_output,loadgen_scenario=Ofline") == []


def test_fashion_mnist_reaches_85_percent_on_the_official_test_set(collection: Path) -> None:
    query = "loadgen_output,classified_fashion_mnist,framework=pytorch,loadgen_mode=AccuracyOnly"
    entry = axq.byquery(query, reporter=QUIET)
    good, total = decoded_accuracy(entry)
    assert total == 10_000 and good / total >= 0.85
    assert entry.get("accuracy") == pytest.approx(100 * good / total)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Write a small ImageNet-layout folder and random ResNet50 weights."""
    root = tmp_path_factory.mktemp("imagenet")
    return make_imagenet_dir(root / "val", 12), make_resnet50_weights(root / "resnet50.pth")


def test_imagenet_resnet50_path(collection: Path, imagenet: tuple[Path, Path]) -> None:
    folder, weights = imagenet
    query = (f"loadgen_output,classified_imagenet,framework=pytorch,loadgen_mode=AccuracyOnly,"
             f"imagenet_dir={folder},weights_path={weights},loadgen_dataset_size=8")
    entry = axq.byquery(query, reporter=QUIET)
    good, total = decoded_accuracy(entry)
    assert total == 8
    assert entry.get("accuracy_report") == f"accuracy={100 * good / total:.3f}%, good={good}, total={total}"
    assert np.load(entry.dep("preprocessed").path / "images.npy", mmap_mode="r").shape == (8, 3, 224, 224)


def test_imagenet_without_a_folder_says_what_to_provide(collection: Path) -> None:
    with pytest.raises(NoProducerError, match=r"needs `imagenet_dir=\.\.\.`"):
        axq.byquery("loadgen_output,classified_imagenet,framework=pytorch")
    result = axq_cli("byquery", "loadgen_output,classified_imagenet,imagenet_dir=/no/such/dir", ",", "get",
                     "accuracy")
    assert result.returncode == 1 and "/no/such/dir" in result.stderr and "Traceback" not in result.stderr


def test_weights_that_do_not_fit_are_a_build_error(collection: Path, imagenet: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    import torch

    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(10, 2048)}, bad)
    with pytest.raises(BuildError, match="don't fit resnet50"):
        axq.byquery(f"loadgen_output,classified_imagenet,imagenet_dir={imagenet[0]},weights_path={bad},"
                    "loadgen_dataset_size=2", reporter=QUIET)
    assert axq.list_entries(f"model,weights_path={bad}") == []
