"""Ultralytics YOLO11 (`model_name=yolo`, yolo11n..x) through axq: the reference's own predictions, on every runtime.

The tests build YOLO11n from ultralytics' bundled yaml at a 64-pixel input (nothing is
downloaded) with its class biases raised, so that random weights detect something: enough
to check that axq's graph and post-processing give what the MLPerf reference harness's
`YOLO.predict(conf=0.001)` gives, that an ultralytics checkpoint loads, and that the
accuracy log is scored as MLPerf's scoring scores it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import axq
from axq.progress import Reporter
from tests.test_coco_detectors import IMAGES, assert_mlperf_rows, axq_cli, write_coco
from tests.test_object_detection import reference_map

QUIET = Reporter("quiet")
SIZE = 64
RUN = f"loadgen_output,detected_coco,model_name=yolo11n,image_size={SIZE},loadgen_dataset_size={IMAGES}"


def confident_yolo(size: int = SIZE) -> object:
    """Return axq's YOLO11n graph, seeded, its class biases raised (sigmoid(-2) = 0.12 before the features)."""
    import torch

    from axq_mlperf import detectors

    torch.manual_seed(0)
    model = detectors.new_model("yolo11n", size).eval()
    for branch in model.network.model[-1].cv3:
        torch.nn.init.constant_(branch[-1].bias, -2.0)
    return model


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a tiny COCO folder shared by the module."""
    return write_coco(tmp_path_factory.mktemp("coco") / "coco")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the confident YOLO11n as ultralytics saves a checkpoint: the model object itself, in fp16."""
    import copy

    import torch

    path = tmp_path_factory.mktemp("weights") / "yolo11n.pt"
    torch.save({"model": copy.deepcopy(confident_yolo().network).half(), "epoch": -1}, path)
    return path


def test_graph_then_postprocess_give_what_the_reference_harness_predict_gives(tmp_path: Path) -> None:
    # The MLPerf reference (vision/classification_and_detection/yolo/yolo_loadgen.py) calls
    # YOLO(model).predict(image, conf=0.001); on an image already S x S that is the same input.
    import torch
    from ultralytics import YOLO

    from axq_mlperf import detectors, yolo

    model = confident_yolo()
    postprocess = detectors.Postprocess(detectors.write_spec(model, tmp_path)["postprocess"],
                                        tmp_path / detectors.ANCHORS)
    rgb = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    with torch.inference_mode():
        rows = postprocess(model(torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float()[None] / 255))[0]
    reference = YOLO("yolo11n.yaml")
    reference.model = model.network
    boxes = reference.predict(np.ascontiguousarray(rgb[..., ::-1]), imgsz=SIZE, conf=0.001, verbose=False)[0].boxes
    count = min(len(boxes), detectors.MAX_DETECTIONS)
    assert count > 0 and int((rows[:, 4] > 0).sum()) == count
    torch.testing.assert_close(rows[:count, [1, 0, 3, 2]], (boxes.xyxy[:count] / SIZE).clamp(0, 1), rtol=0, atol=1e-6)
    torch.testing.assert_close(rows[:count, 4], boxes.conf[:count], rtol=0, atol=1e-6)
    assert rows[:count, 5].tolist() == [float(yolo.COCO_IDS[int(c)]) for c in boxes.cls[:count]]


def test_a_checkpoint_runs_on_every_runtime_and_is_scored_as_mlperf_scores_it(collection: Path, coco_dir: Path,
                                                                              checkpoint: Path) -> None:
    base = f"{RUN},coco_dir={coco_dir},weights_path={checkpoint},loadgen_mode=AccuracyOnly"
    torch_run = axq.byquery(f"{base},framework=pytorch", reporter=QUIET)
    assert torch_run.dep("model").results["random_weights"] is False
    assert torch_run.dep("model").results["postprocess"]["kind"] == "yolo"
    assert_mlperf_rows(torch_run)
    assert torch_run.get("mAP") == pytest.approx(reference_map(torch_run), abs=1e-4)
    for framework in ("onnxrt", "openvino"):
        other = axq.byquery(f"{base},framework={framework}", reporter=QUIET)
        assert_mlperf_rows(other)
        assert other.get("mAP") == pytest.approx(torch_run.get("mAP"), abs=0.5)
    mlperf = axq.byquery(f"loadgen_output,detected_coco,model_name=yolo,image_size={SIZE},coco_dir={coco_dir},"
                         f"loadgen_mode=AccuracyOnly,loadgen_dataset_size=1", reporter=QUIET)
    assert mlperf.params["model_name"] == "yolo11l" and mlperf.dep("model").results["random_weights"] is True


def test_weights_for_another_model_are_one_line(collection: Path, tmp_path: Path, checkpoint: Path) -> None:
    query = f"model,dataset_name=coco,model_name=yolo11s,image_size={SIZE},weights_path={checkpoint}"
    result = axq_cli("byquery", query, ",", "get", "weights_sha256")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"weights at {checkpoint} don't fit yolo11s (ultralytics' yolo11s.yaml, 80 classes): " in line
    assert "has shape" in line and axq.list_entries(query) == []


def test_without_ultralytics_the_run_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from axq.errors import BuildError
    from axq_mlperf import yolo

    monkeypatch.setitem(sys.modules, "ultralytics", None)  # what `import ultralytics` meets where it isn't installed
    with pytest.raises(BuildError, match=r"needs ultralytics \(AGPL-3.0\), an optional extra: pip install 'axq\[yolo"):
        yolo.new_network("yolo11n")
