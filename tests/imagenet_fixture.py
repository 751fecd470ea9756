"""Build recipe entries without the kernel, and make ImageNet-like inputs offline.

`build_recipe` resolves a producer's parameters from its recipe.json (recipe defaults,
producer defaults, overrides, fixed params) and runs its build function with a small fake
context, so the recipes can be tested while the kernel is written. `make_imagenet_dir` and
`make_resnet50_weights` stand in for a user's ImageNet folder and downloaded weights.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ROOT / "entries"


def load_code(recipe: str) -> ModuleType:
    """Import a recipe's code.py by path, under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"recipe_{recipe}", ENTRIES / recipe / "code.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_recipe(recipe: str) -> dict:
    """Return a recipe's parsed recipe.json."""
    return json.loads((ENTRIES / recipe / "recipe.json").read_text())


class FakeEntry:
    """A built entry: its directory, parameters, results and recipe code."""

    def __init__(self, recipe: str, path: Path, params: dict, results: dict | None) -> None:
        self.recipe, self.path, self.params, self.results = recipe, path, params, results or {}

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call a function of the recipe's code.py with this entry first."""
        return getattr(load_code(self.recipe), function)(self, *args, **kwargs)


class FakeContext:
    """The build context a recipe's build function sees."""

    def __init__(self, path: Path, params: dict, deps: dict[str, FakeEntry]) -> None:
        self.path, self.params, self.deps = path, params, deps
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        """Keep a log line."""
        self.lines.append(message)

    def progress(self, items: Iterable, total: int | None = None, desc: str = "") -> Iterator:
        """Yield the items unchanged."""
        yield from items


def find_producer(recipe: dict, dataset_name: str | None) -> dict:
    """Return the recipe's producer for dataset_name (its only one when None)."""
    producers = recipe["producers"]
    if dataset_name is None:
        assert len(producers) == 1
        return producers[0]
    return next(p for p in producers if p["params"].get("dataset_name") == dataset_name)


def build_recipe(recipe: str, path: Path, dataset_name: str | None = None,
                 deps: dict[str, FakeEntry] | None = None, **overrides: Any) -> FakeEntry:
    """Build a recipe's entry into path, as the kernel would, and return it."""
    manifest = load_recipe(recipe)
    producer = find_producer(manifest, dataset_name)
    params = {**manifest["defaults"], **producer["defaults"], **overrides, **producer["params"]}
    assert set(producer["required"]) <= set(params), "a required parameter is not set"
    path.mkdir(parents=True)
    context = FakeContext(path, params, deps or {})
    results = getattr(load_code(recipe), producer.get("build", "build"))(context)
    return FakeEntry(recipe, path, params, results)


def make_imagenet_dir(root: Path, n: int) -> Path:
    """Write n ImageNet-style validation JPEGs of varied non-square sizes and a val_map.txt."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = root / "imagenet_val"
    folder.mkdir(parents=True)
    lines = []
    for index in range(n):
        gray = (digits.images[index] * 255 / 16).astype(np.uint8)
        rgb = np.stack([gray, 255 - gray, gray // 2], axis=-1)
        size = (300 + 37 * (index % 5), 260 + 53 * (index % 3))  # width, height
        name = f"ILSVRC2012_val_{index + 1:08d}.JPEG"
        Image.fromarray(rgb).resize(size).save(folder / name, "JPEG")
        lines.append(f"{name} {(digits.target[index] * 97 + index) % 1000}\n")
    (folder / "val_map.txt").write_text("".join(lines))
    return folder


def make_resnet50_weights(path: Path) -> Path:
    """Save a randomly initialised torchvision resnet50 state_dict to path."""
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return path
