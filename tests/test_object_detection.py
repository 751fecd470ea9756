"""Object detection through the task seam: the embedded digits detection set, real LoadGen, pycocotools.

One work collection for the module: the canvases are made and the detector trained once
(its default recipe, since its mAP is asserted). The mAP is checked against a score made
here from mlperf_log_accuracy.json as MLPerf's tools/accuracy-coco.py makes it (its
algorithm, written again: the sample index is the position in the annotation file's
images, boxes are [ymin, xmin, ymax, xmax] normalised), not taken from the recipe's own
decoding.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import axq
from axq.errors import BuildError
from axq.progress import Reporter
from tests.conftest import REPO

DETECTION = "loadgen_output,detected_digits"
QUIET = Reporter("quiet")
SIZE = 100  # scored canvases per accuracy run (of the 500 of the test split)
ENOUGH = 50.0  # the floor of mAP@[.5:.95] in percent; a randomly initialised detector scores ~0


def axq_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the installed CLI as a user would (quiet), environment inherited."""
    return subprocess.run([sys.executable, "-m", "axq", "--quiet", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=900, check=False)


def reference_map(entry: axq.entry.Entry) -> float:
    """Score an accuracy log as accuracy-coco.py does: mAP@[.5:.95] in percent, with pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    folder = entry.dep("preprocessed").path
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(folder / "annotations" / "instances_val2017.json"))
        images = truth.dataset["images"]
        found, answered = [], set()
        for record in json.loads((entry.path / "mlperf_log_accuracy.json").read_text()):
            image = images[record["qsl_idx"]]
            answered.add(image["id"])
            data = np.frombuffer(bytes.fromhex(record["data"]), np.float32)
            for index, ymin, xmin, ymax, xmax, score, label in data.reshape(-1, 7).tolist():
                assert int(index) == record["qsl_idx"]
                h, w = image["height"], image["width"]
                found.append({"image_id": image["id"], "category_id": int(label), "score": score,
                              "bbox": [xmin * w, ymin * h, (xmax - xmin) * w, (ymax - ymin) * h]})
        evaluation = COCOeval(truth, truth.loadRes(found), iouType="bbox")
        evaluation.params.imgIds = list(answered)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return 100.0 * evaluation.stats[0]


def test_map_as_typed_is_what_the_reference_scorer_gives(collection: Path) -> None:
    query = f"{DETECTION},loadgen_mode=AccuracyOnly,loadgen_dataset_size={SIZE}"
    result = axq_cli("byquery", query, ",", "get", "mAP")
    assert result.returncode == 0, result.stderr
    entry = axq.byquery(query)
    expected = reference_map(entry)
    assert expected >= ENOUGH
    assert float(result.stdout) == pytest.approx(expected, abs=1e-4)
    assert entry.get("accuracy") == entry.get("mAP")
    assert entry.get("accuracy_report").startswith(f"mAP={expected:.3f}%, images={SIZE}, detections=")
    assert entry.get("coco_report")[0].startswith("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all")


def test_responses_are_mlperf_detection_rows(collection: Path) -> None:
    entry = axq.byquery(f"{DETECTION},loadgen_mode=AccuracyOnly,loadgen_dataset_size={SIZE}", reporter=QUIET)
    records = json.loads((entry.path / "mlperf_log_accuracy.json").read_text())
    assert sorted(r["qsl_idx"] for r in records) == list(range(SIZE))
    rows = np.concatenate([np.frombuffer(bytes.fromhex(r["data"]), np.float32).reshape(-1, 7) for r in records])
    boxes, scores, labels = rows[:, 1:5], rows[:, 5], rows[:, 6]
    assert ((boxes >= -0.01) & (boxes <= 1.01)).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()  # ymax >= ymin, xmax >= xmin
    assert (scores >= 0.05).all() and set(labels.astype(int).tolist()) <= set(range(1, 11))


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "MultiStream"])
def test_every_scenario_runs_both_modes(collection: Path, scenario: str) -> None:
    base = f"{DETECTION},loadgen_scenario={scenario},loadgen_dataset_size=40"
    if scenario == "Server":  # a reachable target: a timed one is half the speed of a machine that may be busy
        base += ",loadgen_target_qps=200,loadgen_target_latency=100"
    accuracy = axq.byquery(f"{base},loadgen_mode=AccuracyOnly", reporter=QUIET)
    assert accuracy.get("mAP") >= ENOUGH
    performance = axq.byquery(f"{base},loadgen_mode=PerformanceOnly", reporter=QUIET)
    assert performance.get("result_valid") is True, performance.get("performance_report")
    assert performance.get("performance") > 0
    with pytest.raises(axq.errors.GetterError, match="no accuracy in a loadgen_mode=PerformanceOnly run"):
        performance.get("mAP")


@pytest.mark.parametrize("framework", ["onnxrt", "openvino"])
def test_other_runtimes_score_what_pytorch_scores(collection: Path, framework: str) -> None:
    base = f"{DETECTION},loadgen_mode=AccuracyOnly,loadgen_dataset_size={SIZE}"
    torch_map = axq.byquery(f"{base},framework=pytorch", reporter=QUIET).get("mAP")
    entry = axq.byquery(f"{base},framework={framework}", reporter=QUIET)
    assert entry.get("mAP") == pytest.approx(torch_map, abs=0.5)
    assert entry.get("mAP") == pytest.approx(reference_map(entry), abs=1e-4)


def test_int8_keeps_99_percent_of_fp32_map(collection: Path) -> None:
    entry = axq.byquery(f"{DETECTION},framework=openvino,precision=int8,loadgen_mode=AccuracyOnly,"
                        f"loadgen_dataset_size={SIZE}", reporter=QUIET)
    model = entry.dep("runtime_model")
    assert model.results["accuracy_ratio"] >= 0.99
    assert model.results["int8_accuracy"] >= ENOUGH and entry.get("mAP") >= ENOUGH


def test_a_task_the_data_set_is_not_for_is_refused(collection: Path) -> None:
    result = axq_cli("byquery", "loadgen_output,classified_digits,task=object_detection", ",", "get", "accuracy")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown parameter `task` for `loadgen_output,classified_digits`: " in result.stderr
    assert "(loadgen_output,detected_digits" in result.stderr  # the rule that does take it
    result = axq_cli("byquery", f"{DETECTION},loadgen_mode=AccuracyOnly,loadgen_dataset_size=8", ",", "get",
                     "top1")
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_axs_task_spelling_reaches_the_embedded_detector(collection: Path) -> None:
    entry = axq.byquery("loadgen_output,task=object_detection,framework=onnxrt,loadgen_dataset_size=20",
                        reporter=QUIET)
    assert entry.params["dataset_name"] == "digits_detection" and entry.get("mAP") >= 0


# ----------------------------------------------------------------------------- COCO folders and bad input


def coco_folder(root: Path, images: int = 2) -> Path:
    """Write a small COCO-layout folder: PNG images in val2017/ and their instances json."""
    from PIL import Image

    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    listed = []
    for number in range(1, images + 1):
        Image.fromarray(np.full((32, 48, 3), 40 * number, dtype=np.uint8)).save(root / "val2017" / f"{number}.png")
        listed.append({"id": number, "file_name": f"{number}.png", "width": 48, "height": 32})
    data = {"images": listed, "categories": [{"id": 1, "name": "square"}],
            "annotations": [{"id": 1, "image_id": 1, "bbox": [4, 4, 10, 10], "category_id": 1, "area": 100,
                             "iscrowd": 0}]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return root


def test_a_coco_folder_is_registered(collection: Path, tmp_path: Path) -> None:
    folder = coco_folder(tmp_path / "coco")
    entry = axq.byquery(f"dataset,original,coco,coco_dir={folder}", reporter=QUIET)
    assert entry.results["count"] == 2 and entry.results["boxes"] == 1


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda root: (root / "annotations" / "instances_val2017.json").unlink(),
     "has no annotations/instances_val2017.json"),
    (lambda root: (root / "annotations" / "instances_val2017.json").write_text("{not json"), "is not JSON"),
    (lambda root: (root / "annotations" / "instances_val2017.json").write_text('{"images": []}'),
     "is not a COCO instances file"),
    (lambda root: (root / "val2017" / "2.png").unlink(), "lacks 1 of the 2 images"),
])
def test_a_bad_coco_folder_is_one_line_naming_it(collection: Path, tmp_path: Path, spoil, message: str) -> None:
    folder = coco_folder(tmp_path / "coco")
    spoil(folder)
    result = axq_cli("byquery", f"dataset,original,coco,coco_dir={folder}", ",", "get", "count")
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and str(folder) in result.stderr and "Traceback" not in result.stderr
    assert axq.list_entries(f"dataset,original,coco,coco_dir={folder}") == []


def test_an_image_that_does_not_decode_is_named(collection: Path) -> None:
    from axq_mlperf.coco import image_folder

    dataset = axq.byquery("dataset,original,digits_detection", reporter=QUIET)
    spoiled = image_folder(dataset.path, "test") / "000000000003.png"
    kept = spoiled.read_bytes()
    try:
        spoiled.write_bytes(b"not a png")
        with pytest.raises(BuildError, match=r"000000000003\.png: not an image that decodes"):
            axq.byquery("dataset,preprocessed,digits_detection,split=test,dataset_size=5", reporter=QUIET)
    finally:
        spoiled.write_bytes(kept)


# ----------------------------------------------------------------------------- the README's lines


def readme_lines() -> list[tuple[str, str]]:
    """Return the `$ axq byquery ...` lines of the README's "Object detection" section and the output shown.

    Not the COCO models' lines: they need the user's COCO folder and weights (tests/test_coco_detectors.py
    runs the same rules on a folder it writes).
    """
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Object detection\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    return [(line.strip()[2:], lines[number + 1].strip()) for number, line in enumerate(lines)
            if line.strip().startswith("$ axq byquery ") and "coco" not in line]  # COCO: tests/test_coco_detectors.py


def test_the_readme_shows_detection_lines() -> None:
    assert len(readme_lines()) >= 5


@pytest.mark.parametrize(("line", "shown"), readme_lines())
def test_readme_detection_line_prints_what_it_shows(collection: Path, line: str, shown: str) -> None:
    words = line.split()[1:]  # without `axq`
    result = axq_cli(*words)
    assert result.returncode == 0, result.stderr
    out, getter = result.stdout.strip(), words[-1]
    if getter == "mAP":  # the same seeded recipe: the same mAP here, within what another CPU's arithmetic moves
        assert float(out) >= ENOUGH and float(out) == pytest.approx(float(shown), abs=5)
    elif getter == "accuracy_report":
        assert out.startswith("mAP=") and out.split(",")[1:2] == shown.split(",")[1:2]  # `images=500`
    else:
        assert getter == "performance" and float(out) > 0
