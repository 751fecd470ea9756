"""The axs2mlperf README's image-classification one-liners, typed into axq (issue 9).

Each line runs through the real CLI (`python -m axq`, real LoadGen, real kernel) exactly as
the axs README types it, `axs` replaced by `axq`, after the collection is told where the
data lives (`axq set imagenet_dir=... weights_path=...`). The data are a generated 500-image
ImageNet-layout folder of small JPEGs and a random-weights ResNet50 file (so accuracy is
near 0%: the tests check what was run, not how well). To stay fast on two cores the
collection also sets `loadgen_duration_s=0.2` (a setting like any other) for the two
performance lines. The git collection line is tested in tests/test_collections.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from axq.measure import LOCK_ENV
from tests.conftest import REPO
from tests.imagenet_fixture import make_classifier_weights, make_imagenet_dir, make_resnet50_weights

README = "loadgen_output,classified_imagenet,framework=pytorch"
FIRST = f"{README},loadgen_mode=AccuracyOnly,loadgen_scenario=Offline"
LINES = [  # the axs README's lines, as typed, with what each prints
    (f"{FIRST} , get accuracy", r"\d+\.\d+"),
    (f"{FIRST},loadgen_dataset_size=20,model_name=resnet50 , get accuracy", r"\d+\.\d+"),
    (f"{FIRST},loadgen_dataset_size=500,loadgen_buffer_size=1024 , get accuracy_report",
     r"accuracy=\d+\.\d{3}%, good=\d+, total=500"),
    (f"{README},loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,loadgen_dataset_size=500,"
     "loadgen_buffer_size=1024,loadgen_target_qps=169 , get performance", r"\d+(\.\d+)?"),
    (f"{README},loadgen_mode=PerformanceOnly,loadgen_scenario=SingleStream,loadgen_dataset_size=500,"
     "loadgen_buffer_size=1024,loadgen_target_latency=6 , get performance", r"\d+(\.\d+)?"),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Return the environment of a fresh work collection told where ImageNet and the weights are."""
    root = tmp_path_factory.mktemp("axs")
    folder = make_imagenet_dir(root, 500, small=True)
    weights = make_resnet50_weights(root / "resnet50-0676ba61.pth")
    found = {**os.environ, "AXQ_WORK_COLLECTION": str(root / "wc"), LOCK_ENV: str(root / "measure.lock")}
    found.pop("AXQ_ENTRIES", None)
    set_up = axq(found, f"set imagenet_dir={folder} weights_path={weights} loadgen_duration_s=0.2")
    assert set_up.returncode == 0, set_up.stderr
    return found


def axq(env: dict[str, str], line: str) -> subprocess.CompletedProcess:
    """Run `axq LINE` (split on spaces as a shell would) as a real process."""
    return subprocess.run([sys.executable, "-m", "axq", "--quiet", *line.split()], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=600, check=False)


def output(env: dict[str, str], line: str) -> str:
    """Return what `axq LINE` prints, failing with its error if it fails."""
    done = axq(env, line)
    assert done.returncode == 0, f"axq {line}: {done.stderr}"
    return done.stdout.strip()


@pytest.mark.parametrize(("line", "prints"), LINES, ids=["accuracy", "resnet50-20", "500-1024-report",
                                                          "offline-qps", "singlestream-latency"])
def test_the_readme_line_runs_as_typed(env: dict[str, str], line: str, prints: str) -> None:
    assert re.fullmatch(prints, output(env, f"byquery {line}"))


def test_imagenet_runs_default_to_20_samples_and_the_readme_spellings_mean_one_entry(env: dict[str, str]) -> None:
    assert output(env, f"byquery {FIRST} , get total") == "20"
    path = output(env, f"byquery {FIRST} , get_path")
    assert output(env, f"byquery {FIRST},execution_device=cpu , get_path") == path
    assert output(env, f"byquery {FIRST},loadgen_dataset_size=20,model_name=resnet50 , get_path") == path
    newer = ("loadgen_output,task=image_classification,framework=pytorch,loadgen_mode=AccuracyOnly,"
             "loadgen_scenario=Offline")
    assert output(env, f"byquery {newer} , get_path") == path


def test_a_buffer_larger_than_the_data_set_is_the_data_set(env: dict[str, str]) -> None:
    line = LINES[3][0].split(" , ")[0]
    assert '"performance_sample_count": 500,' in output(env, f"byquery {line} , get summary")
    log = Path(output(env, f"byquery {line} , get_path")) / "build.log"
    assert "loadgen_buffer_size=1024 is more than the 500 samples of the data set" in log.read_text()


def test_another_torchvision_model_with_its_own_preprocessing(env: dict[str, str], tmp_path: Path) -> None:
    weights = make_classifier_weights("efficientnet_b0", tmp_path / "efficientnet_b0.pth")
    line = f"{FIRST},model_name=efficientnet_b0,weights_path={weights}"
    report = output(env, f"byquery {line} , get accuracy_report")
    assert re.fullmatch(r"accuracy=\d+\.\d{3}%, good=\d+, total=20", report)
    plan = output(env, f"plan {line}")
    resnet = output(env, f"plan {FIRST}")
    preprocessed = [re.search(r"preprocessed_dataset_imagenet-\w+", text).group(0) for text in (plan, resnet)]
    assert preprocessed[0] != preprocessed[1]  # bicubic resize, unlike resnet50's bilinear
    mobilenet = output(env, f"plan {FIRST},model_name=mobilenet_v3_small")  # the same preprocessing as resnet50
    assert f"[cached] {preprocessed[1]}" in mobilenet
    assert "[build ] model_torchvision_model_mobilenet_v3_small" in mobilenet


def test_a_model_torchvision_lacks_exits_2_with_a_suggestion(env: dict[str, str]) -> None:
    done = axq(env, f"byquery {FIRST},model_name=resnet51 , get accuracy")
    assert done.returncode == 2 and "did you mean `resnet50`" in done.stderr and "Traceback" not in done.stderr


def test_work_collection_remove_is_last(env: dict[str, str]) -> None:
    collection = Path(env["AXQ_WORK_COLLECTION"])
    assert any(collection.glob("loadgen_program_*"))
    output(env, "work_collection , remove")
    assert not collection.exists() or not any(collection.glob("loadgen_program_*"))
