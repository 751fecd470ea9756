"""Test the model recipes: the seeded small CNN and torchvision's ResNet50."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from axq.errors import BuildError
from tests.imagenet_fixture import ENTRIES, build_recipe, load_code, make_resnet50_weights


def accuracy(model: torch.nn.Module, dataset) -> float:
    """Return the model's top-1 accuracy on a preprocessed entry, in [0, 1]."""
    images, labels = dataset.call("load_arrays")
    with torch.no_grad():
        batches = torch.from_numpy(np.array(images)).split(1000)
        predicted = torch.cat([model(batch).argmax(1) for batch in batches]).numpy()
    return float((predicted == labels).mean())


def preprocessed_splits(name: str, root: Path) -> tuple:
    """Build a data set's original entry and its preprocessed train and test splits."""
    original = build_recipe(f"dataset_{name}", root / "original")
    deps = {"dataset": original}
    return (build_recipe("preprocessed_dataset", root / "train", name, deps, split="train"),
            build_recipe("preprocessed_dataset", root / "test", name, deps, split="test"))


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return preprocessed_splits("digits", tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def digits_model(digits, tmp_path_factory: pytest.TempPathFactory):
    return build_recipe("model_small_cnn", tmp_path_factory.mktemp("m") / "model", "digits",
                        {"dataset": digits[0]})


def test_model_recipes_keep_the_contract() -> None:
    for recipe in ("model_small_cnn", "model_resnet50"):
        for producer in json.loads((ENTRIES / recipe / "recipe.json").read_text())["producers"]:
            assert producer["tags"] == ["model"]
            assert {"model_name", "dataset_name"} <= set(producer["params"])
        assert callable(load_code(recipe).load_model)


def test_small_cnn_learns_digits(digits, digits_model) -> None:
    model = digits_model.call("load_model", "cpu")
    assert not model.training
    assert accuracy(model, digits[1]) >= 0.95
    assert digits_model.results["final_loss"] < 0.05


def test_small_cnn_training_is_deterministic(digits, digits_model, tmp_path: Path) -> None:
    again = build_recipe("model_small_cnn", tmp_path / "again", "digits", {"dataset": digits[0]})
    other = build_recipe("model_small_cnn", tmp_path / "other", "digits", {"dataset": digits[0]},
                         seed=1, epochs=1)
    first, second = (torch.load(e.path / "weights.pt") for e in (digits_model, again))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    third = torch.load(other.path / "weights.pt")
    assert not torch.equal(first["0.weight"], third["0.weight"])


@pytest.fixture
def resnet_weights(tmp_path: Path) -> Path:
    return make_resnet50_weights(tmp_path / "random_resnet50.pth")


def test_resnet50_from_a_weights_file(resnet_weights: Path, tmp_path: Path) -> None:
    entry = build_recipe("model_resnet50", tmp_path / "e", weights_path=str(resnet_weights))
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
    entry = build_recipe("model_resnet50", tmp_path / "e")
    assert entry.results["weights_source"] == str(cached)


def test_resnet50_rejects_weights_of_another_model(digits_model, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"don't fit resnet50: missing key `conv1\.weight`"):
        build_recipe("model_resnet50", tmp_path / "e", weights_path=str(digits_model.path / "weights.pt"))


def test_resnet50_rejects_a_misshapen_layer(tmp_path: Path) -> None:
    import torchvision

    state = torchvision.models.resnet50(num_classes=10).state_dict()
    torch.save(state, tmp_path / "ten.pth")
    with pytest.raises(BuildError, match=r"`fc.weight` has shape \(10, 2048\), expected \(1000, 2048\)"):
        build_recipe("model_resnet50", tmp_path / "e", weights_path=str(tmp_path / "ten.pth"))


def test_resnet50_without_weights_says_how_to_provide_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    resnet = load_code("model_resnet50")
    monkeypatch.setattr(resnet, "network_available", lambda: False)
    with pytest.raises(BuildError, match=r"no resnet50 weights.*resnet50-0676ba61\.pth or pass weights_path="):
        resnet.find_weights(None, print)
    with pytest.raises(BuildError, match=r"weights_path=/no/such\.pth: no such file"):
        resnet.find_weights("/no/such.pth", print)
