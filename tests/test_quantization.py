"""Tests of int8 post-training static quantization (entries/model_converted) on the real data.

Each quantized model is built through the real kernel (`axq.byquery("model,converted,...")`),
calibrated on the training split and checked on the test split; the small CNNs of digits and
Fashion-MNIST must keep >= 99% of their fp32 accuracy, and a model that keeps less than
`accuracy_target` is refused with a message naming both accuracies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import axq
from axq.entry import Entry, load_code
from axq.errors import BuildError, ParameterError
from axq.progress import Reporter
from axq.resolve import resolve
from tests.imagenet_fixture import ENTRIES

QUIET = Reporter("quiet")
CODE = load_code(str(ENTRIES / "model_converted" / "code.py"))
FORMATS = ["onnx", "openvino", "pytorch"]


def quantized(format_: str, dataset: str, settings: str = "") -> Entry:
    """Build (or reuse) the int8 small CNN of a data set in a format."""
    query = f"model,converted,format={format_},precision=int8,model_name=small_cnn,dataset_name={dataset}"
    return axq.byquery(query + (f",{settings}" if settings else ""), reporter=QUIET)


@pytest.mark.parametrize("dataset", ["digits", "fashion_mnist"])
@pytest.mark.parametrize("format_", FORMATS)
def test_int8_keeps_99_percent_of_fp32_accuracy_on_the_real_data(collection: Path, format_: str, dataset: str) -> None:
    entry = quantized(format_, dataset)
    fp32, int8 = entry.get("fp32_accuracy"), entry.get("int8_accuracy")
    assert int8 >= 0.99 * fp32 and fp32 > {"digits": 95, "fashion_mnist": 85}[dataset]
    assert entry.get("accuracy_ratio") == pytest.approx(int8 / fp32, abs=1e-6)
    assert entry.results["check_size"] == {"digits": 450, "fashion_mnist": 10_000}[dataset]
    assert (entry.path / entry.results["file"]).is_file() and entry.results["precision"] == "int8"


def test_calibration_comes_from_the_training_split_never_the_scored_images(collection: Path) -> None:
    entry = quantized("onnx", "digits")
    calibration, check = entry.dep("calibration"), entry.dep("check")
    assert (calibration.params["split"], check.params["split"]) == ("train", "test")
    assert calibration.identity != check.identity and entry.results["calibration_size"] == 500
    scored = axq.byquery("loadgen_output,classified_digits,framework=onnxruntime,precision=int8,num_threads=1",
                         reporter=QUIET)
    assert scored.dep("preprocessed").identity == check.identity  # the run scores the test split
    assert scored.dep("runtime_model").identity == entry.identity


def test_recorded_int8_accuracy_is_what_onnxruntime_itself_gives(collection: Path) -> None:
    import onnxruntime as ort

    entry = quantized("onnx", "digits")
    images, labels = entry.dep("check").call("load_arrays")
    session = ort.InferenceSession(str(entry.path / entry.results["file"]), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: np.asarray(images, dtype=np.float32)})[0]
    assert 100 * float((logits.argmax(1) == labels).mean()) == pytest.approx(entry.get("int8_accuracy"))


def test_a_model_below_accuracy_target_is_refused_naming_both_accuracies(collection: Path) -> None:
    poor = "calibration_size=1"  # one calibration image: ranges too narrow, a little accuracy lost
    kept = quantized("onnx", "fashion_mnist", f"{poor},accuracy_target=0")
    assert kept.get("accuracy_ratio") < 0.999
    with pytest.raises(BuildError, match=r"int8 model keeps 99\.\d\d% of fp32 accuracy \(int8 \d+\.\d{3}%, "
                                         r"fp32 \d+\.\d{3}%\), below accuracy_target=0\.999"):
        quantized("onnx", "fashion_mnist", f"{poor},accuracy_target=0.999")
    query = "model,converted,format=onnx,precision=int8,dataset_name=fashion_mnist,accuracy_target=0.999"
    assert axq.list_entries(query) == []


@pytest.mark.parametrize("ratio, target, refused", [(0.99, 0.99, False), (0.9899, 0.99, True), (0.5, 0.0, False)])
def test_the_accuracy_rule_refuses_only_below_the_target(ratio: float, target: float, refused: bool) -> None:
    if refused:
        with pytest.raises(BuildError, match=f"below accuracy_target={target}"):
            CODE.refuse_below_target(ratio, 90.0, 90.0 * ratio, target)
    else:
        CODE.refuse_below_target(ratio, 90.0, 90.0 * ratio, target)


@pytest.mark.parametrize("name, relus", [("resnet18", 2), ("resnet50", 3)])
def test_shared_relus_are_split_without_changing_the_output(name: str, relus: int) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        after = CODE.split_shared_relus(model)(x)
    assert torch.equal(before, after)
    block = model.layer1[0]
    assert len(block.relus) == 3 and len({id(r) for r in block.relus}) == 3 and relus <= 3


def test_int8_imagenet_needs_a_calibration_folder_and_plans_it_as_the_model_preprocesses() -> None:
    base = "loadgen_output,classified_imagenet,framework=openvino,precision=int8,imagenet_dir=/data/val"
    with pytest.raises(ParameterError, match="calibration_dir=FOLDER"):
        resolve(base)
    node = resolve(f"{base},calibration_dir=/data/calibration,model_name=resnet18")
    model = node.deps["runtime_model"]
    calibration, check = model.deps["calibration"], model.deps["check"]
    assert calibration.params["imagenet_dir"] == "/data/calibration" and check.params["imagenet_dir"] == "/data/val"
    same = ("image_resize", "image_crop", "image_mean", "image_std", "image_interpolation")
    assert {k: calibration.params[k] for k in same} == {k: node.deps["preprocessed"].params[k] for k in same}
    assert check.params["dataset_size"] == node.params["loadgen_dataset_size"]
