"""Test the digit canvases and the small detector: boxes exact, output contract, exports, seeding.

The canvases come from scikit-learn's digits (`axq_mlperf.canvas.compose`); the detector is
entries/model_small_detector's code, trained briefly here (the accuracy training is the
suite's shared one, and benchmarks/train_detector.py's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from axq.entry import load_code, use_libraries

CODE = Path(__file__).resolve().parents[1] / "entries" / "model_small_detector" / "code.py"
SIZE = 64
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's digits as uint8 images (0..16) and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.uint8), data.target


@pytest.fixture(scope="module")
def detector() -> Any:
    """Return the detector recipe's code module."""
    return load_code(str(CODE))


def compose(digits: tuple[np.ndarray, np.ndarray], count: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return canvases of the digits from axq_mlperf.canvas."""
    use_libraries()
    from axq_mlperf.canvas import compose as compose_canvases

    return compose_canvases(*digits, count, seed)


def as_input(canvases: np.ndarray) -> torch.Tensor:
    """Return uint8 canvases as the model's float32 N x 1 x H x W input in [0, 1]."""
    return torch.from_numpy(canvases[:, None].astype(np.float32) / 255)


def train(detector: Any, digits: tuple[np.ndarray, np.ndarray], count: int, epochs: int,
          seed: int = 0) -> torch.nn.Module:
    """Return the detector trained on `count` canvases for `epochs` epochs, on one thread."""
    canvases, boxes = compose(digits, count, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        params = {"seed": seed, "learning_rate": 0.004, "epochs": epochs, "train_batch_size": 32}
        return detector.train(as_input(canvases).numpy(), boxes, params)[0]
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- canvases


def test_compose_is_deterministic_for_a_seed(digits):
    first, again, other = compose(digits, 50, 7), compose(digits, 50, 7), compose(digits, 50, 8)
    assert np.array_equal(first[0], again[0])
    assert all(np.array_equal(a, b) for a, b in zip(first[1], again[1], strict=True))
    assert not np.array_equal(first[0], other[0])


def test_compose_boxes_are_tight_inside_apart_and_labelled(digits):
    canvases, boxes = compose(digits, 200, 0)
    assert canvases.shape == (200, SIZE, SIZE) and canvases.dtype == np.uint8
    assert {len(b) for b in boxes} <= set(range(1, 6)) and max(len(b) for b in boxes) == 5
    for canvas, image_boxes in zip(canvases, boxes, strict=True):
        assert image_boxes.dtype == np.float32 and image_boxes.shape[1] == 5
        covered = np.zeros(canvas.shape, dtype=bool)
        for x, y, w, h, category in image_boxes.astype(int):
            assert min(x, y) >= 0 and max(x + w, y + h) <= SIZE and 1 <= category <= 10
            ink = canvas[y:y + h, x:x + w]
            assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()  # tight
            assert not covered[y:y + h, x:x + w].any()  # apart
            covered[y:y + h, x:x + w] = True
        assert not canvas[~covered].any()  # no ink outside the boxes


def test_compose_gives_each_digit_its_label(digits):
    images, labels = digits
    sevens = images[labels == 7]
    _, boxes = compose((sevens, np.full(len(sevens), 7)), 20, 0)
    assert set(np.concatenate(boxes)[:, 4].tolist()) == {8.0}


# ----------------------------------------------------------------------------- the model


def test_output_is_fixed_size_rows_of_normalised_boxes_scores_and_categories(detector, digits):
    torch.manual_seed(0)
    model = detector.make_model().eval()
    for batch in (1, 3):
        with torch.no_grad():
            rows = model(as_input(compose(digits, batch, 0)[0]))
        assert rows.shape == (batch, detector.MAX_DETECTIONS, 6) and rows.dtype == torch.float32
        boxes, scores, categories = rows[..., :4], rows[..., 4], rows[..., 5]
        assert boxes.min() >= 0 and boxes.max() <= 1
        assert (boxes[..., 2] >= boxes[..., 0]).all() and (boxes[..., 3] >= boxes[..., 1]).all()
        assert scores.min() >= 0 and scores.max() <= 1 and (scores.diff(dim=1) <= 0).all()
        assert (categories == categories.round()).all() and categories.min() >= 1 and categories.max() <= 10


def test_training_is_reproducible_for_a_seed(detector, digits):
    first, again = train(detector, digits, 64, 1), train(detector, digits, 64, 1)
    other = train(detector, digits, 64, 1, seed=1)
    state, repeated, changed = first.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(state[name], repeated[name]) for name in state)
    assert not all(torch.equal(state[name], changed[name]) for name in state)


def matched_difference(reference: np.ndarray, other: np.ndarray, min_score: float) -> float:
    """Return the largest difference between each confident reference row and its nearest row in other.

    Rows of (almost) equal scores may come in another order from another runtime, or be
    another of several tied cells (a flat background scores alike everywhere), so each
    reference row with a score of its own is matched to the other's closest row of the image.
    """
    worst = 0.0
    for mine, theirs in zip(reference, other, strict=True):
        scores = mine[:, 4]
        alone = (np.abs(scores[:, None] - scores[None, :]) < TOLERANCE).sum(axis=1) == 1
        for row in mine[alone & (scores >= min_score)]:
            worst = max(worst, float(np.abs(theirs - row).max(axis=1).min()))
    return worst


@pytest.fixture(scope="module")
def exported(detector, digits, tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """Return a briefly trained detector and its ONNX export (dynamo, batch dimension dynamic)."""
    model = train(detector, digits, 512, 3)
    path = tmp_path_factory.mktemp("detector") / "model.onnx"
    program = torch.onnx.export(model, (torch.zeros(2, 1, SIZE, SIZE),), dynamo=True,
                                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                                input_names=["input"], output_names=["detections"], verbose=False)
    assert program is not None
    program.save(str(path), external_data=False)
    return model, path


def run_onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    """Return the ONNX model's output on ONNX Runtime's CPU provider."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def run_openvino(path: Path, x: np.ndarray) -> np.ndarray:
    """Return the ONNX model's output converted (as model_converted does) and compiled by OpenVINO, CPU f32."""
    import openvino

    model = openvino.convert_model(str(path))
    compiled = openvino.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(x)[0]


@pytest.mark.parametrize("runtime", [run_onnxruntime, run_openvino], ids=["onnxruntime", "openvino"])
def test_exported_detector_gives_pytorchs_detections(exported, digits, runtime):
    model, path = exported
    for batch in (1, 37):
        x = as_input(compose(digits, batch, 3)[0])
        with torch.no_grad():
            reference = model(x).numpy()
        assert (reference[..., 4] >= 0.2).sum() >= batch  # confident rows to compare
        theirs = runtime(path, x.numpy())
        assert theirs.shape == reference.shape and theirs.dtype == np.float32
        assert matched_difference(reference, theirs, 0.05) < TOLERANCE
