"""Test the model recipes through the kernel: the seeded small CNN and torchvision's classifiers.

One work collection per module, so the digits chain (original, preprocessed train split,
trained model) is built once by `axq.byquery` and shared. A test that needs a real rebuild, or
whose outcome hangs on the environment rather than on parameters (TORCH_HOME), uses a fresh
collection of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import axq
from axq.entry import Entry, load_code, use_libraries
from axq.errors import BuildError, ParameterError
from axq.progress import Reporter
from tests.imagenet_fixture import ENTRIES, make_classifier_weights, make_resnet50_weights

SMALL_CNN = "model,model_name=small_cnn,dataset_name=digits"
RESNET50 = "model,model_name=resnet50,dataset_name=imagenet"
QUIET = Reporter("quiet")


pytestmark = pytest.mark.usefixtures("collection")  # the shared collection of tests/conftest.py


def build(query: str, work_collection: Path | None = None) -> Entry:
    """Return the entry a query means, built quietly if missing (in the module's collection by default)."""
    return axq.byquery(query, work_collection=work_collection, reporter=QUIET)


def accuracy(model: torch.nn.Module, dataset: Entry) -> float:
    """Return the model's top-1 accuracy on a preprocessed entry, in [0, 1]."""
    images, labels = dataset.call("load_arrays")
    with torch.no_grad():
        batches = torch.from_numpy(np.array(images)).split(1000)
        predicted = torch.cat([model(batch).argmax(1) for batch in batches]).numpy()
    return float((predicted == labels).mean())


@pytest.fixture(scope="module")
def digits_model(collection: Path) -> Entry:
    return build(SMALL_CNN)


@pytest.fixture(scope="module")
def digits_test(collection: Path) -> Entry:
    return build("dataset,preprocessed,digits,split=test")


def test_model_recipes_keep_the_contract() -> None:
    for recipe in ("model_small_cnn", "model_torchvision"):
        manifest = json.loads((ENTRIES / recipe / "recipe.json").read_text())
        for producer in manifest["producers"]:
            assert producer["tags"] == ["model"] and "dataset_name" in producer["params"]
            assert "model_name" in producer["params"] or "model_name" in manifest["parameters"]
        assert callable(load_code(str(ENTRIES / recipe / "code.py")).load_model)


def test_small_cnn_learns_digits(digits_model: Entry, digits_test: Entry) -> None:
    trained_on = digits_model.dep("dataset")
    assert trained_on.params["split"] == "train" and trained_on.dep("dataset").path == digits_test.dep("dataset").path
    model = digits_model.call("load_model", "cpu")
    assert not model.training
    assert accuracy(model, digits_test) >= 0.95
    assert digits_model.results["final_loss"] < 0.05


def test_small_cnn_training_is_deterministic(digits_model: Entry, tmp_path: Path) -> None:
    again = build(SMALL_CNN, tmp_path / "wc")  # a fresh collection: trained again from scratch
    other = build(f"{SMALL_CNN},seed=1,epochs=1")
    assert again.path != digits_model.path and again.identity == digits_model.identity
    assert other.dep("dataset").path == digits_model.dep("dataset").path
    first, second = (torch.load(e.path / "weights.pt") for e in (digits_model, again))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    third = torch.load(other.path / "weights.pt")
    assert not torch.equal(first["0.weight"], third["0.weight"])


@pytest.fixture
def resnet_weights(tmp_path: Path) -> Path:
    return make_resnet50_weights(tmp_path / "random_resnet50.pth")


def test_resnet50_from_a_weights_file(resnet_weights: Path) -> None:
    entry = build(f"{RESNET50},weights_path={resnet_weights}")
    assert entry.results["weights_source"] == str(resnet_weights)
    assert (entry.path / "weights.pt").stat().st_size == resnet_weights.stat().st_size
    model = entry.call("load_model", "cpu")
    with torch.no_grad():
        logits = model(torch.zeros(1, 3, 224, 224))
    assert logits.shape == (1, 1000) and not model.training
    expected = torch.load(resnet_weights)["fc.bias"]
    assert torch.equal(model.state_dict()["fc.bias"], expected)


def test_resnet50_from_torch_hub_cache(resnet_weights: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    cached.parent.mkdir(parents=True)
    resnet_weights.rename(cached)
    entry = build(RESNET50, tmp_path / "wc")  # TORCH_HOME is not part of the identity
    assert entry.results["weights_source"] == str(cached)


def test_resnet50_rejects_weights_of_another_model(digits_model: Entry) -> None:
    with pytest.raises(BuildError, match=r"don't fit resnet50: missing key `conv1\.weight`"):
        build(f"{RESNET50},weights_path={digits_model.path / 'weights.pt'}")


def test_resnet50_rejects_a_misshapen_layer(tmp_path: Path) -> None:
    import torchvision

    state = torchvision.models.resnet50(num_classes=10).state_dict()
    torch.save(state, tmp_path / "ten.pth")
    with pytest.raises(BuildError, match=r"`fc.weight` has shape \(10, 2048\), expected \(1000, 2048\)"):
        build(f"{RESNET50},weights_path={tmp_path / 'ten.pth'}")


def test_resnet50_without_weights_says_how_to_provide_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    resnet = load_code(str(ENTRIES / "model_torchvision" / "code.py"))  # the module the kernel builds with
    monkeypatch.setattr(resnet, "network_available", lambda: False)
    fresh = tmp_path / "wc"
    with pytest.raises(BuildError, match=r"no resnet50 weights.*resnet50-0676ba61\.pth or pass weights_path="):
        build(RESNET50, fresh)
    with pytest.raises(BuildError, match=r"weights_path=/no/such\.pth: no such file"):
        build(f"{RESNET50},weights_path=/no/such.pth", fresh)


# ----------------------------------------------------------------------------- any torchvision classifier


def test_the_static_model_table_is_torchvisions() -> None:
    """Every classification model torchvision has, with its weights' own preprocessing (resnet50: MLPerf's)."""
    import torchvision

    use_libraries()
    from axq_mlperf.classifiers import MODELS, NORMALISATIONS

    names = torchvision.models.list_models(module=torchvision.models)
    assert sorted(MODELS) == sorted(names)
    for name in names:
        weights = torchvision.models.get_model_weights(name)
        published = weights.IMAGENET1K_V1 if name == "resnet50" else weights.DEFAULT
        transforms, found = published.transforms(), MODELS[name]
        assert (found.resize, found.crop) == (transforms.resize_size[0], transforms.crop_size[0]), name
        assert found.interpolation == transforms.interpolation.value, name
        assert NORMALISATIONS[found.normalisation] == (list(transforms.mean), list(transforms.std)), name
        assert published.url.endswith("/" + found.weights_file), name
    assert (MODELS["resnet50"].resize, MODELS["resnet50"].crop) == (256, 224)  # the MLPerf reference


def test_a_second_classifier_from_a_weights_file(tmp_path: Path) -> None:
    weights = make_classifier_weights("mobilenet_v3_small", tmp_path / "mobilenet.pth")
    entry = build(f"model,model_name=mobilenet_v3_small,dataset_name=imagenet,weights_path={weights}")
    assert entry.name.startswith("model_torchvision_model_mobilenet_v3_small-")
    model = entry.call("load_model", "cpu")
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    with pytest.raises(BuildError, match="don't fit resnet18"):
        build(f"model,model_name=resnet18,dataset_name=imagenet,weights_path={weights}")


def test_a_name_torchvision_does_not_have_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"`model_name=mobilenet_v4` .*: is not a torchvision image "
                                             r"classification model; did you mean `mobilenet_v2`"):
        build("model,model_name=mobilenet_v4,dataset_name=imagenet", tmp_path / "wc")
    assert not (tmp_path / "wc").exists() or not any((tmp_path / "wc").glob("model_torchvision*"))


def test_without_weights_the_error_names_the_file_and_the_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    code = load_code(str(ENTRIES / "model_torchvision" / "code.py"))
    monkeypatch.setattr(code, "network_available", lambda: False)
    folder = tmp_path / "empty" / "hub" / "checkpoints"
    with pytest.raises(BuildError, match=rf"no efficientnet_b0 weights: none in torch's cache \({folder}\).*put "
                                         r"https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc\.pth "
                                         r"there as efficientnet_b0_rwightman-7f5810bc\.pth"):
        build("model,model_name=efficientnet_b0,dataset_name=imagenet", tmp_path / "wc")
