"""Test the data set recipes through the kernel: originals (digits, Fashion-MNIST, ImageNet) and preprocessing.

Every entry is built by `axq.byquery`, in one work collection per module, so a query that a
test shares with another (the digits original, Fashion-MNIST) is built once and then found in
the cache. A test that needs a real rebuild uses a fresh collection of its own. Functions of a
recipe's code checked on synthetic inputs (the IDX parser, the centre crop) are imported with
the kernel's own loader, so a monkeypatch on them reaches the kernel's builds too.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import axq
from axq.build import log_path_of
from axq.entry import Entry, load_code
from axq.errors import BuildError
from axq.graph import Node
from axq.progress import Reporter
from axq.recipe import HOOKS, PRODUCER_FIELDS, RECIPE_FIELDS, Producer, read_recipe
from tests.imagenet_fixture import ENTRIES, make_imagenet_dir

SHIPPED = sorted(p.name for p in ENTRIES.iterdir() if (p / "recipe.json").is_file())
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CODE = ENTRIES / "dataset_fashion_mnist" / "code.py"
PREPROCESS_CODE = ENTRIES / "preprocessed_dataset" / "code.py"
QUIET = Reporter("quiet")
# The MLPerf ResNet50 reference's preprocessing: the ImageNet preprocessing rule's defaults.
MLPERF_RESNET50 = {"image_resize": 256, "image_crop": 224, "image_interpolation": "bilinear",
                   "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}


pytestmark = pytest.mark.usefixtures("collection")  # the shared collection of tests/conftest.py


def preprocessing_rule() -> Producer:
    """Return the ImageNet rule of the preprocessed_dataset recipe."""
    return next(p for p in read_recipe(ENTRIES / "preprocessed_dataset").producers if "imagenet" in p.tags)


def build(query: str, work_collection: Path | None = None) -> Entry:
    """Return the entry a query means, built quietly if missing (in the module's collection by default)."""
    return axq.byquery(query, work_collection=work_collection, reporter=QUIET)


# ---- recipe.json format ----

@pytest.mark.parametrize("recipe", SHIPPED)
def test_recipe_json_follows_the_format(recipe: str) -> None:
    manifest = json.loads((ENTRIES / recipe / "recipe.json").read_text())
    assert set(manifest) <= set(RECIPE_FIELDS) and {"version", "producers", "parameters"} <= set(manifest)
    assert isinstance(manifest["version"], int) and isinstance(manifest["description"], str)
    loaded = read_recipe(ENTRIES / recipe)  # the kernel's own checks (and `inherits`), and its code loader
    for producer in manifest["producers"]:
        assert set(producer) <= set(PRODUCER_FIELDS) and "tags" in producer
        assert all(isinstance(tag, str) for tag in producer["tags"])
        assert all(isinstance(dep, str) for dep in producer.get("deps", {}).values())
        named = {*producer.get("defaults", {}), *producer.get("required", [])}
        assert named <= set(loaded.parameters), named - set(loaded.parameters)
    assert all(p.description and "\n" not in p.description for p in loaded.parameters.values())
    assert [list(p.tags) for p in loaded.producers] == [p["tags"] for p in manifest["producers"]]
    for name in [*(p.build for p in loaded.producers), *(manifest[h] for h in HOOKS if h in manifest)]:
        assert callable(loaded.function(name))
    getters = load_code(str(ENTRIES / recipe / "getters.py")) if (ENTRIES / recipe / "getters.py").is_file() else None
    for name in loaded.getters:
        assert callable(getattr(getters, name, None) or loaded.function(name)), name


@pytest.mark.parametrize("recipe, tags", [
    ("dataset_digits", ["dataset", "original", "digits"]),
    ("dataset_fashion_mnist", ["dataset", "original", "fashion_mnist"]),
    ("dataset_imagenet", ["dataset", "original", "imagenet"]),
])
def test_original_datasets_have_their_contract_tags(recipe: str, tags: list[str]) -> None:
    producer = json.loads((ENTRIES / recipe / "recipe.json").read_text())["producers"][0]
    assert producer["tags"] == tags and producer["params"] == {"dataset_name": tags[2]}


# ---- digits ----

@pytest.fixture(scope="module")
def digits(collection: Path) -> Entry:
    return build("dataset,original,digits")


def test_digits_split_sizes_and_stratification(digits: Entry) -> None:
    assert digits.tags == ("dataset", "original", "digits") and digits.params["split_seed"] == 0
    x_train, y_train = digits.call("load_split", "train")
    _, y_test = digits.call("load_split", "test")
    assert (len(y_train), len(y_test)) == (1347, 450) == (digits.results["train_count"], 450)
    assert x_train.shape == (1347, 8, 8) and x_train.dtype == np.float32
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    test_share = np.bincount(y_test, minlength=10) / np.bincount(np.concatenate([y_train, y_test]))
    assert np.all(np.abs(test_share - 0.25) < 0.02)


def test_digits_split_is_deterministic_and_seeded(digits: Entry, tmp_path: Path) -> None:
    again = build("dataset,original,digits", tmp_path / "wc")  # a fresh collection: rebuilt
    other = build("dataset,original,digits,split_seed=1")
    assert again.path != digits.path and again.identity == digits.identity
    assert other.identity != digits.identity and other.params["split_seed"] == 1
    assert np.array_equal(digits.call("load_split", "test")[1], again.call("load_split", "test")[1])
    assert not np.array_equal(digits.call("load_split", "test")[1], other.call("load_split", "test")[1])


def test_digits_unknown_split_is_a_build_error(digits: Entry) -> None:
    with pytest.raises(BuildError, match="split=train or split=test"):
        digits.call("load_split", "val")


@pytest.mark.parametrize("split, count", [("test", 450), ("train", 1347)])
def test_digits_preprocessing(digits: Entry, split: str, count: int) -> None:
    entry = build(f"dataset,preprocessed,digits,split={split}")
    assert entry.dep("dataset").path == digits.path  # the cached original, not a second one
    images, labels = entry.call("load_arrays")
    assert isinstance(images.raw, np.memmap) and images.raw.dtype == np.uint8, "stored as uint8 levels"
    assert images.shape == (count, 1, 8, 8)
    assert images.dtype == np.float32 and labels.dtype == np.int64 and entry.results["count"] == count
    raw, raw_labels = digits.call("load_split", split)
    assert np.allclose(np.asarray(images[:])[:, 0] * 0.3760 + 0.3053, raw, atol=1e-6)
    assert np.array_equal(labels, raw_labels)
    assert abs(float(images.mean())) < 0.05 and abs(float(images.std()) - 1) < 0.05


def test_preprocessing_takes_the_first_n(digits: Entry) -> None:
    entry = build("dataset,preprocessed,digits,dataset_size=7")
    images, labels = entry.call("load_arrays", False)
    assert images.shape == (7, 1, 8, 8) and not isinstance(images, np.memmap)
    assert entry.params["split"] == "test"
    assert np.array_equal(labels, digits.call("load_split", "test")[1][:7])


@pytest.mark.parametrize("settings, message", [
    ("dataset_size=451", "from 1 to 450"),
    ("split=val", "split=train or split=test"),
])
def test_preprocessing_bad_parameters(collection: Path, settings: str, message: str) -> None:
    query = f"dataset,preprocessed,digits,{settings}"
    with pytest.raises(BuildError, match=rf"^building preprocessed_dataset\S* failed: .*{message}.*; log: ") as caught:
        build(query)
    assert message in Path(log_path_of(caught.value) or "").read_text()
    assert axq.list_entries(query) == []  # nothing kept


# ---- IDX parser and Fashion-MNIST ----

def write_idx(path: Path, magic: int, array: np.ndarray) -> Path:
    """Write array as a gzipped IDX file with the given magic number."""
    header = struct.pack(">i", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path


def test_idx_parser_reads_images_and_labels(tmp_path: Path) -> None:
    fashion = load_code(str(FASHION_CODE))
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    assert np.array_equal(fashion.read_idx(write_idx(tmp_path / "i.gz", 2051, images), 2051), images)
    assert np.array_equal(fashion.read_idx(write_idx(tmp_path / "l.gz", 2049, labels), 2049), labels)


def test_idx_parser_rejects_bad_files(tmp_path: Path) -> None:
    fashion = load_code(str(FASHION_CODE))
    labels = write_idx(tmp_path / "l.gz", 2049, np.zeros(5))
    with pytest.raises(BuildError, match="magic number 2049, expected 2051"):
        fashion.read_idx(labels, 2051)
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(struct.pack(">iI", 2049, 10) + bytes(4)))
    with pytest.raises(BuildError, match="holds 4 data bytes"):
        fashion.read_idx(short, 2049)
    plain = tmp_path / "plain.gz"
    plain.write_bytes(b"not gzip at all")
    with pytest.raises(BuildError, match="not a readable gzip file"):
        fashion.read_idx(plain, 2049)


def test_fashion_mnist_missing_everywhere_says_how_to_provide_it(tmp_path: Path, monkeypatch) -> None:
    fashion = load_code(str(FASHION_CODE))  # the module the kernel builds with
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setattr(fashion, "download", lambda folder, log: False)
    fresh = tmp_path / "wc"  # the module's collection may hold a built Fashion-MNIST
    with pytest.raises(BuildError, match=r"apt install dataset-fashion-mnist.*fashion_mnist_dir="):
        build("dataset,original,fashion_mnist", fresh)
    with pytest.raises(BuildError, match=r"lacks train-images-idx3-ubyte\.gz"):
        build(f"dataset,original,fashion_mnist,fashion_mnist_dir={tmp_path}", fresh)


@pytest.fixture(scope="module")
def fashion(collection: Path) -> Entry:
    return build("dataset,original,fashion_mnist")


def test_fashion_mnist_from_the_debian_package(fashion: Entry) -> None:
    assert fashion.results["source_dir"] == str(FASHION_DIR)
    for split, count in (("train", 60000), ("test", 10000)):
        images, labels = fashion.call("load_split", split)
        assert images.shape == (count, 28, 28) and images.dtype == np.float32
        assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(10))
        assert np.all(np.bincount(labels) == count // 10)
        assert images.min() == 0.0 and images.max() == 1.0


def test_fashion_mnist_preprocessing(fashion: Entry) -> None:
    entry = build("dataset,preprocessed,fashion_mnist")
    assert entry.dep("dataset").path == fashion.path
    images, labels = entry.call("load_arrays")
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.float32 and len(labels) == 10000
    assert abs(float(images.mean())) < 0.05 and abs(float(images.std()) - 1) < 0.05


FASHION_RUN = "loadgen_output,classified_fashion_mnist"


def test_fashion_mnist_dir_naming_the_default_folder_plans_nothing_new(fashion: Entry, tmp_path: Path,
                                                                       axq_cli) -> None:
    """Written out, with a slash, through `..` or a link, the default folder is the default entry (issue 22)."""
    build("dataset,preprocessed,fashion_mnist")
    link = tmp_path / "link"
    link.symlink_to(FASHION_DIR)
    default = axq_cli("plan", FASHION_RUN)
    assert default[0] == 0 and f"[cached] {fashion.name}" in default[1]
    assert "[cached] preprocessed_dataset_fashion_mnist" in default[1]
    for folder in (FASHION_DIR, f"{FASHION_DIR}/", f"{FASHION_DIR}/../fashion-mnist", link):
        assert axq_cli("plan", f"{FASHION_RUN},fashion_mnist_dir={folder}") == default, folder
        assert build(f"dataset,original,fashion_mnist,fashion_mnist_dir={folder}").path == fashion.path


@pytest.mark.parametrize("recipe", ["dataset_fashion_mnist", "preprocessed_dataset", "model_small_cnn",
                                    "loadgen_program", "loadgen_peak"])
def test_each_recipe_passing_fashion_mnist_dir_on_means_the_folder_the_build_reads(recipe: str) -> None:
    declared = read_recipe(ENTRIES / recipe).parameters["fashion_mnist_dir"]
    assert (declared.type, declared.null_means) == ("path", str(load_code(str(FASHION_CODE)).SYSTEM_DIR))


def test_fashion_mnist_dir_elsewhere_flows_from_a_benchmark_query_to_the_data_set(fashion: Entry,
                                                                                   tmp_path: Path) -> None:
    from axq.resolve import resolve

    copy = (tmp_path / "copy").resolve()
    shutil.copytree(FASHION_DIR, copy)
    entry = build(f"dataset,original,fashion_mnist,fashion_mnist_dir={copy}")
    assert entry.results["source_dir"] == str(copy) and entry.path != fashion.path
    for settings in ("", ",framework=onnxruntime", ",framework=openvino", ",framework=onnxruntime,precision=int8",
                     ",precision=int8"):
        run = resolve(f"{FASHION_RUN}{settings},fashion_mnist_dir={copy}")
        data = {node.identity for node in graph_nodes(run) if node.producer.recipe.name == "dataset_fashion_mnist"}
        assert data == {entry.manifest["identity"]}, settings  # test, training, calibration and check data alike
        assert run.params["fashion_mnist_dir"] == str(copy)
    peak = resolve(f"loadgen_output,classified_fashion_mnist,loadgen_mode=FindPeakPerformance,fashion_mnist_dir={copy}")
    data = {node.identity for node in graph_nodes(peak) if node.producer.recipe.name == "dataset_fashion_mnist"}
    assert data == {entry.manifest["identity"]}
    probe = load_code(str(ENTRIES / "loadgen_peak" / "code.py")).probe_overrides(peak.params, 500)
    assert probe["fashion_mnist_dir"] == str(copy)  # each probe is the run of that folder


def graph_nodes(node: Node) -> Iterator[Node]:
    """Yield a node and every node below it, depth first."""
    yield node
    for dep in node.deps.values():
        yield from graph_nodes(dep)


# ---- ImageNet ----

def test_imagenet_registers_the_folder(tmp_path: Path) -> None:
    folder = make_imagenet_dir(tmp_path, 5)
    entry = build(f"dataset,original,imagenet,imagenet_dir={folder}")
    items = entry.call("list_images")
    assert entry.results["count"] == 5 and len(items) == 5
    assert items[0][0] == folder / "ILSVRC2012_val_00000001.JPEG" and items[0][0].is_file()
    assert all(0 <= label < 1000 for _, label in items)
    assert not list(entry.path.glob("*.JPEG"))


def break_missing_dir(folder: Path) -> Path:
    return folder / "nowhere"


def break_val_map(folder: Path) -> Path:
    (folder / "val_map.txt").unlink()
    return folder


def break_a_file(folder: Path) -> Path:
    (folder / "ILSVRC2012_val_00000002.JPEG").unlink()
    return folder


def break_a_line(folder: Path) -> Path:
    with (folder / "val_map.txt").open("a") as stream:
        stream.write("ILSVRC2012_val_00000009.JPEG cat\n")
    return folder


@pytest.mark.parametrize("damage, message", [
    (break_missing_dir, "no such folder; imagenet_dir must be"),
    (break_val_map, "has no val_map.txt"),
    (break_a_file, "lacks 1 of the 3 images listed in val_map.txt, first ILSVRC2012_val_00000002.JPEG"),
    (break_a_line, "line 4: expected `FILE LABEL` with a label in 0..999"),
])
def test_imagenet_validation_errors(tmp_path: Path, damage, message: str) -> None:
    folder = damage(make_imagenet_dir(tmp_path, 3))
    with pytest.raises(BuildError, match=message):
        build(f"dataset,original,imagenet,imagenet_dir={folder}")


def test_imagenet_preprocessing_shape_and_first_n(tmp_path: Path) -> None:
    folder = make_imagenet_dir(tmp_path, 4)
    entry = build(f"dataset,preprocessed,imagenet,imagenet_dir={folder},dataset_size=3")
    original = entry.dep("dataset")
    assert original.results["count"] == 4 and entry.results["count"] == 3
    images, labels = entry.call("load_arrays")
    assert images.shape == (3, 3, 224, 224) and images.dtype == np.float32
    assert labels.tolist() == [label for _, label in original.call("list_images")[:3]]
    assert float(images.min()) > -2.2 and float(images.max()) < 2.7


def test_imagenet_preprocessing_follows_the_model_and_is_shared_by_models_that_agree(tmp_path: Path) -> None:
    folder = make_imagenet_dir(tmp_path, 3)
    base = f"dataset,preprocessed,imagenet,imagenet_dir={folder},dataset_size=2"
    default = build(base)
    assert build(f"{base},image_resize=256,image_crop=224,image_interpolation=bilinear").path == default.path
    efficient = axq.byquery(f"{base},image_interpolation=bicubic,image_crop=240,image_resize=255",
                            {"image_mean": [0.5, 0.5, 0.5]}, reporter=QUIET)
    assert efficient.path != default.path
    images, _ = efficient.call("load_arrays")
    assert images.shape == (2, 3, 240, 240)
    assert "bicubic resize to 255, centre crop 240" in (efficient.path / "build.log").read_text()


def test_imagenet_resize_and_centre_crop(tmp_path: Path) -> None:
    """A 512x320 image: resized to 409x256, its central 224x224 is red, the rest blue."""
    pre = load_code(str(PREPROCESS_CODE))
    assert {k: v for k, v in preprocessing_rule().defaults.items() if k.startswith("image_")} == MLPERF_RESNET50
    pixels = np.zeros((320, 512, 3), dtype=np.uint8)
    pixels[..., 2] = 255
    pixels[:, 116:396, 0], pixels[:, 116:396, 2] = 255, 0  # 280 wide = 224 * 320 / 256
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    assert pre.resize_shorter_side(Image.fromarray(pixels), 256).size == (409, 256)
    out = pre.preprocess_image(tmp_path / "wide.png", MLPERF_RESNET50)
    red = (np.array([1.0, 0.0, 0.0]) - MLPERF_RESNET50["image_mean"]) / MLPERF_RESNET50["image_std"]
    assert out.shape == (3, 224, 224)
    assert np.allclose(out[:, :, 3:-3].reshape(3, -1).mean(axis=1), red, atol=0.05)
    assert np.allclose(out[:, 112, 112], red, atol=1e-4)
    tall = pre.centre_crop(Image.new("RGB", (256, 301)), 224)
    assert tall.size == (224, 224)


def test_fashion_mnist_download_is_recorded_inside_the_entry(tmp_path: Path, monkeypatch) -> None:
    import shutil

    fashion = load_code(str(FASHION_CODE))
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "none")

    def fake_download(folder: Path, log) -> bool:  # stands in for the network: copies the real files
        folder.mkdir(parents=True)
        for name in FASHION_DIR.iterdir():
            shutil.copy(name, folder / name.name)
        return True

    monkeypatch.setattr(fashion, "download", fake_download)
    entry = build("dataset,original,fashion_mnist", tmp_path / "wc")
    assert entry.results["source_dir"] == "download"
    assert (entry.path / "download" / "t10k-labels-idx1-ubyte.gz").is_file()
