"""Test the model recipes through the kernel: the seeded small CNN and torchvision's ResNet50.

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
from axq.entry import Entry, load_code
from axq.errors import BuildError
from axq.progress import Reporter
from tests.imagenet_fixture import ENTRIES, make_resnet50_weights

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
    for recipe in ("model_small_cnn", "model_resnet50"):
        for producer in json.loads((ENTRIES / recipe / "recipe.json").read_text())["producers"]:
            assert producer["tags"] == ["model"]
            assert {"model_name", "dataset_name"} <= set(producer["params"])
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
    resnet = load_code(str(ENTRIES / "model_resnet50" / "code.py"))  # the module the kernel builds with
    monkeypatch.setattr(resnet, "network_available", lambda: False)
    fresh = tmp_path / "wc"
    with pytest.raises(BuildError, match=r"no resnet50 weights.*resnet50-0676ba61\.pth or pass weights_path="):
        build(RESNET50, fresh)
    with pytest.raises(BuildError, match=r"weights_path=/no/such\.pth: no such file"):
        build(f"{RESNET50},weights_path=/no/such.pth", fresh)
