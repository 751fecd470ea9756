"""Torchvision's COCO detectors (retinanet_coco, ssd_mobilenet) on a user's COCO folder, through the real LoadGen.

The tests write a tiny COCO folder (four PNGs, two boxes each) and run the models at a
64-pixel input, the smallest that keeps every FPN level: nothing is downloaded, so the
models have random weights unless a test writes a weights file. A "trained" case is
random weights whose classification bias is raised, so that every image gets detections
above the score threshold: enough to check the responses' layout and that the mAP is the
one MLPerf's scoring (tests/test_object_detection.reference_map) gives the same log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import axq
from axq.progress import Reporter
from tests.conftest import REPO
from tests.test_object_detection import reference_map

QUIET = Reporter("quiet")
SIZE = 64  # the input side of every run here (retinanet_coco's own is 800, ssd_mobilenet's 320)
IMAGES = 4
RUN = f"loadgen_output,detected_coco,model_name=retinanet_coco,image_size={SIZE},loadgen_dataset_size={IMAGES}"


def axq_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user would (quiet), environment inherited."""
    return subprocess.run([sys.executable, "-m", "axq", "--quiet", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


def write_coco(root: Path) -> Path:
    """Write a COCO-layout folder: IMAGES RGB PNGs of different sizes, two filled boxes each, and their json."""
    from PIL import Image

    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    images, boxes = [], []
    for number in range(1, IMAGES + 1):
        width, height = 80 + 16 * number, 72
        pixels = np.full((height, width, 3), 30, dtype=np.uint8)
        for k in range(2):
            x, y = int(rng.integers(0, width - 30)), int(rng.integers(0, height - 30))
            pixels[y:y + 24, x:x + 20] = (200, 90 * k, 40)
            boxes.append({"id": len(boxes) + 1, "image_id": number, "bbox": [x, y, 20, 24], "category_id": 1 + 2 * k,
                          "area": 480, "iscrowd": 0})
        Image.fromarray(pixels).save(root / "val2017" / f"{number:012d}.png")
        images.append({"id": number, "file_name": f"{number:012d}.png", "width": width, "height": height})
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    data = {"images": images, "annotations": boxes, "categories": categories}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a tiny COCO folder shared by the module."""
    return write_coco(tmp_path_factory.mktemp("coco") / "coco")


def network(name: str, num_classes: int = 91) -> object:
    """Return torchvision's detector as axq makes it (random weights, seeded), or with another class count."""
    import torch

    from axq_mlperf import detectors

    torch.manual_seed(1)
    if num_classes == 91:
        return detectors.new_network(name, SIZE)
    from torchvision.models import detection

    return detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes)


@pytest.fixture(scope="module")
def confident_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write retinanet_coco weights that detect something everywhere: random, with a high class bias."""
    import torch

    model = network("retinanet_coco")
    torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, 1.0)  # sigmoid(1) = 0.73
    path = tmp_path_factory.mktemp("weights") / "retinanet_confident.pth"
    torch.save(model.state_dict(), path)
    return path


def rows_of(entry: axq.entry.Entry) -> list[np.ndarray]:
    """Return each accuracy log record's detections as rows of seven float32, in the log's order."""
    records = json.loads((entry.path / "mlperf_log_accuracy.json").read_text())
    return [np.frombuffer(bytes.fromhex(r["data"]), np.float32).reshape(-1, 7) for r in records]


def test_random_weights_run_but_refuse_a_map(collection: Path, coco_dir: Path) -> None:
    query = f"{RUN},coco_dir={coco_dir},loadgen_mode=AccuracyOnly"
    for getter in ("mAP", "accuracy"):
        result = axq_cli("byquery", query, ",", "get", getter)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [
            "axq: no accuracy: model_name=retinanet_coco ran with random weights (no weights_path), which are for "
            "performance runs only; pass weights_path=FILE (a retinanet_coco state_dict)"]
    entry = axq.byquery(query, reporter=QUIET)
    assert entry.dep("model").results["random_weights"] is True
    assert len(rows_of(entry)) == IMAGES  # every image answered (random RetinaNet scores ~0.01: no rows kept)


def test_a_weights_file_is_loaded_as_it_is(collection: Path, tmp_path: Path) -> None:
    import torch

    base = f"model,dataset_name=coco,model_name=retinanet_coco,image_size={SIZE}"
    random = axq.byquery(base, reporter=QUIET)
    saved = tmp_path / "same.pt"
    saved.write_bytes((random.path / "weights.pt").read_bytes())
    loaded = axq.byquery(f"{base},weights_path={saved}", reporter=QUIET)
    assert loaded.results["random_weights"] is False and loaded.results["weights_source"] == str(saved)
    torch.manual_seed(5)
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.inference_mode():
        first, second = random.call("load_model")(x), loaded.call("load_model")(x)
    anchors = sum(random.results["postprocess"]["levels"])
    assert first.shape == (2, anchors, 4 + 91) and torch.equal(first, second)


@pytest.mark.parametrize(("name", "size"), [("retinanet_coco", SIZE), ("retinanet_coco", 72), ("ssd_mobilenet", SIZE)])
def test_heads_then_postprocess_give_what_torchvisions_model_gives(tmp_path: Path, name: str, size: int) -> None:
    # What every runtime runs (the heads) and what follows it (torchvision's postprocess_detections on the
    # anchors the entry stores) must be torchvision's detector itself: 72 is padded to 96 as its transform does.
    import torch

    from axq_mlperf import detectors

    torch.manual_seed(3)
    model = detectors.new_model(name, size).eval()
    if name == "retinanet_coco":
        torch.nn.init.constant_(model.network.head.classification_head.cls_logits.bias, 1.0)
    postprocess = detectors.Postprocess(detectors.write_spec(model, tmp_path)["postprocess"],
                                        tmp_path / detectors.ANCHORS)
    x = torch.rand(2, 3, size, size)
    with torch.inference_mode():
        wanted, rows = model.network(list(x)), postprocess(model(x))
        from_numpy = postprocess(model(x).numpy())
    assert isinstance(from_numpy, np.ndarray) and np.array_equal(from_numpy, rows.numpy())
    for found, image in zip(wanted, rows, strict=True):
        count = len(found["scores"])
        assert count > 0 and (image[count:, 4] == 0).all()
        xmin, ymin, xmax, ymax = (found["boxes"] / size).clamp(0, 1).unbind(1)
        expected = torch.stack([ymin, xmin, ymax, xmax, found["scores"], found["labels"].float()], dim=1)
        torch.testing.assert_close(image[:count], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("made", "problem"), [
    (lambda: network("ssd_mobilenet"), "missing key `backbone.body.conv1.weight`"),
    (lambda: network("retinanet_coco", num_classes=10), "`head.classification_head.cls_logits.weight` has shape"),
])
def test_weights_for_another_model_are_refused(collection: Path, tmp_path: Path, made, problem: str) -> None:
    import torch

    path = tmp_path / "other.pth"
    torch.save(made().state_dict(), path)
    query = f"model,dataset_name=coco,model_name=retinanet_coco,image_size={SIZE},weights_path={path}"
    result = axq_cli("byquery", query, ",", "get", "weights_sha256")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"weights at {path} don't fit retinanet_coco (retinanet_resnet50_fpn, 91 classes): {problem}" in line
    assert axq.list_entries(query) == []


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "MultiStream"])
def test_every_scenario_runs_a_performance_test(collection: Path, coco_dir: Path, scenario: str) -> None:
    # A short test with given targets (no timing of the model first): LoadGen's early stopping would want
    # hundreds of queries of a model this slow here (MultiStream's p99), so the run is not asked to be
    # VALID, only to be a real LoadGen test of what it asked.
    entry = axq.byquery(f"{RUN},coco_dir={coco_dir},loadgen_scenario={scenario},loadgen_mode=PerformanceOnly,"
                        f"loadgen_multistreamness=2,loadgen_query_count=12,loadgen_duration_s=0.2,"
                        f"loadgen_target_qps=5,loadgen_target_latency=500", reporter=QUIET)
    assert entry.results["scenario"] == scenario and entry.results["min_queries_met"] is True
    assert entry.get("performance") > 0
    with pytest.raises(axq.errors.GetterError, match="no accuracy in a loadgen_mode=PerformanceOnly run"):
        entry.get("mAP")


def test_ssdlite_is_ssd_mobilenet(collection: Path, coco_dir: Path) -> None:
    entry = axq.byquery(f"loadgen_output,detected_coco,coco_dir={coco_dir},model_name=ssdlite,image_size={SIZE},"
                        f"loadgen_dataset_size=2,loadgen_mode=AccuracyOnly,loadgen_scenario=SingleStream",
                        reporter=QUIET)
    assert entry.params["model_name"] == "ssd_mobilenet" and len(rows_of(entry)) == 2
    assert entry.dep("model").results["image_size"] == SIZE


def assert_mlperf_rows(entry: axq.entry.Entry) -> None:
    """Check an accuracy log of the confident weights: every image answered with MLPerf's detection rows."""
    records = json.loads((entry.path / "mlperf_log_accuracy.json").read_text())
    assert sorted(r["qsl_idx"] for r in records) == list(range(IMAGES))
    for record, rows in zip(records, rows_of(entry), strict=True):
        assert 0 < len(rows) <= 100 and (rows[:, 0] == record["qsl_idx"]).all()
        boxes, scores, labels = rows[:, 1:5], rows[:, 5], rows[:, 6]
        assert ((boxes >= 0) & (boxes <= 1)).all() and (boxes[:, 2] >= boxes[:, 0]).all()
        assert (boxes[:, 3] >= boxes[:, 1]).all() and (scores >= 0.05).all() and (np.diff(scores) <= 0).all()
        assert (labels == labels.round()).all() and ((labels >= 1) & (labels <= 90)).all()
    annotations = json.loads((entry.dep("preprocessed").path / "annotations" / "instances_val2017.json").read_text())
    assert [(i["width"], i["height"]) for i in annotations["images"]] == [(80 + 16 * n, 72) for n in range(1, 5)]


def test_the_axs_line_reaches_the_coco_rule_once_coco_dir_is_set(collection: Path, coco_dir: Path,
                                                                  confident_weights: Path) -> None:
    line = (f"loadgen_output,task=object_detection,framework=pytorch,model_name=retinanet_coco,"
            f"loadgen_dataset_size={IMAGES},loadgen_buffer_size=100")
    before = axq_cli("byquery", line, ",", "get", "accuracy")
    assert before.returncode == 2 and "needs `coco_dir=...`" in before.stderr
    assert axq_cli("set", f"coco_dir={coco_dir}").returncode == 0
    try:
        result = axq_cli("byquery", f"{line},image_size={SIZE},weights_path={confident_weights}", ",", "get",
                         "accuracy")
        assert result.returncode == 0, result.stderr
        entry = axq.byquery(f"{line},image_size={SIZE},weights_path={confident_weights}", reporter=QUIET)
        assert entry.params["dataset_name"] == "coco" and entry.params["coco_dir"] == str(coco_dir)
        assert float(result.stdout) == pytest.approx(reference_map(entry), abs=1e-4)
        assert entry.get("mAP") == entry.get("accuracy")
        assert_mlperf_rows(entry)
        for framework in ("onnxrt", "openvino"):  # the same heads exported, the same post-processing after them
            other = axq.byquery(f"{line.replace('pytorch', framework)},image_size={SIZE},"
                                f"weights_path={confident_weights}", reporter=QUIET)
            assert other.dep("runtime_model").results["format"] == {"onnxrt": "onnx"}.get(framework, framework)
            assert_mlperf_rows(other)
            assert other.get("mAP") == pytest.approx(entry.get("mAP"), abs=0.5)
            assert other.get("mAP") == pytest.approx(reference_map(other), abs=1e-4)
    finally:
        assert axq_cli("unset", "coco_dir").returncode == 0


def test_a_bad_coco_dir_is_one_line_naming_it(collection: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = axq_cli("byquery", f"{RUN},coco_dir={missing}", ",", "get", "performance")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"{missing}: no such folder; a COCO folder holds annotations/instances_val2017.json" in line
    broken = write_coco(tmp_path / "broken")
    (broken / "val2017" / "000000000002.png").write_bytes(b"not a png")
    result = axq_cli("byquery", f"{RUN},coco_dir={broken}", ",", "get", "performance")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"{broken / 'val2017' / '000000000002.png'}: not an image that decodes" in line
    assert axq.list_entries(f"dataset,preprocessed,coco,coco_dir={broken}") == []


def test_int8_is_calibrated_on_its_own_folder_and_checked_against_fp32(collection: Path, coco_dir: Path,
                                                                       confident_weights: Path) -> None:
    base = f"{RUN},coco_dir={coco_dir},weights_path={confident_weights},loadgen_mode=AccuracyOnly,precision=int8"
    missing = axq_cli("byquery", f"{base},framework=onnxrt", ",", "get", "mAP")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "int8 COCO models need calibration_dir=FOLDER: COCO images to calibrate on" in missing.stderr
    pt2e = axq_cli("byquery", f"{base},framework=pytorch,calibration_dir={coco_dir}", ",", "get", "mAP")
    assert pt2e.returncode == 2 and "torchao's x86 PT2E quantizer refuses its FPN" in pt2e.stderr
    # The scored images calibrate here only because the test has no others; a user's calibration_dir never holds them.
    entry = axq.byquery(f"{base},framework=onnxrt,calibration_dir={coco_dir}", reporter=QUIET)
    quantized = entry.dep("runtime_model").results
    assert quantized["precision"] == "int8" and quantized["check_size"] == IMAGES
    assert quantized["postprocess"]["kind"] == "retinanet"
    assert quantized["int8_accuracy"] >= quantized["accuracy_target"] * quantized["fp32_accuracy"]
    assert_mlperf_rows(entry)
    assert entry.get("mAP") == pytest.approx(reference_map(entry), abs=1e-4)
