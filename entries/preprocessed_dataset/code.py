"""Preprocess a data set split into `images.npy` (uint8 N x C x H x W) and `labels.npy`.

Storage (axq_mlperf.pixels): the pixels are kept as uint8 levels (255 per unit, 16 for
scikit-learn's digits), with `normalisation.json` saying how they become model inputs;
`load_arrays` returns them normalised as float32 on read (memory-mapped: rows are
normalised as they are taken), the same values normalising before storing gave, at a
quarter of the size (ImageNet: 147 KiB an image, not 588). ImageNet images are decoded,
resized and cropped by a thread per core (PIL releases the GIL while it works).

Digits and Fashion-MNIST: pixels scaled to [0, 1], then normalised with a fixed mean and
standard deviation per data set (of its training images), shape N x 1 x H x W.

ImageNet, as each model's reference preprocessing does it (the parameters `image_resize`,
`image_crop`, `image_interpolation`, `image_mean`, `image_std`, which a LoadGen run takes
from axq_mlperf.classifiers, so models with the same preprocessing share one entry): RGB, an
aspect-preserving resize so the shorter side is `image_resize`, a centre crop of
`image_crop`, pixels scaled to [0, 1] and normalised, N x 3 x crop x crop. The defaults are
the MLPerf ResNet50 reference's (`pre_process_vgg`): shorter side 256 (224 / 0.875), crop
224. Two differences, both to match torchvision's resnet50, which is the model here: the
resize is PIL bilinear (the reference uses OpenCV INTER_AREA, so pixel values differ
slightly), and pixels are normalised with torchvision's ImageNet mean and std (the
reference subtracts per-channel means in 0..255 for its TensorFlow/ONNX model).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from axq.entry import BuildContext, Params

NORMALISE = {  # (mean, std) of the [0, 1] training pixels
    "digits": (0.3053, 0.3760),
    "fashion_mnist": (0.2860, 0.3530),
}
SPLITS = {"digits": ("train", "test"), "fashion_mnist": ("train", "test"), "imagenet": ("val",),
          "digits_detection": ("train", "test"), "coco": ("val",)}
# uint8 levels per unit
LEVELS = {"digits": 16, "fashion_mnist": 255, "imagenet": 255, "digits_detection": 255, "coco": 255}
GRAYSCALE = {"digits_detection"}  # detection sets whose images are one channel


def build_grayscale(ctx: BuildContext) -> dict:
    """Scale, normalise and save the first dataset_size images of a digits-like split."""
    import numpy as np

    name, split = ctx.params["dataset_name"], ctx.params["split"]
    check_split(name, split)
    images, labels = ctx.deps["dataset"].call("load_split", split)
    count = size_to_use(ctx.params["dataset_size"], len(labels), name, split)
    from axq_mlperf import pixels

    mean, std = NORMALISE[name]
    stored = pixels.to_levels(images[:count], LEVELS[name])[:, None, :, :]
    np.save(ctx.path / pixels.IMAGES, stored)
    pixels.write_normalisation(ctx.path, LEVELS[name], mean, std)
    np.save(ctx.path / "labels.npy", labels[:count].astype(np.int64))
    ctx.log(f"{name} {split}: {count} images, shape {stored.shape}, stored as uint8")
    return {"count": count, "mean": mean, "std": std}


def build_imagenet(ctx: BuildContext) -> dict:
    """Resize, crop and normalise the first dataset_size validation images, one by one."""
    import numpy as np

    check_split("imagenet", ctx.params["split"])
    items = ctx.deps["dataset"].call("list_images")
    count = size_to_use(ctx.params["dataset_size"], len(items), "imagenet", "val")
    crop = ctx.params["image_crop"]
    store_pixels(ctx, [path for path, _ in items[:count]], (count, 3, crop, crop))
    np.save(ctx.path / "labels.npy", np.array([label for _, label in items[:count]],
                                              dtype=np.int64))
    ctx.log(f"imagenet val: {count} images, shape ({count}, 3, {crop}, {crop}), {describe(ctx.params)}")
    return {"count": count}


def store_pixels(ctx: BuildContext, paths: list[Path], shape: tuple[int, ...]) -> None:
    """Write the resized and cropped uint8 pixels of the images, a thread per core, and their normalisation."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from axq_mlperf import pixels

    out = np.lib.format.open_memmap(ctx.path / pixels.IMAGES, mode="w+", dtype=np.uint8, shape=shape)
    with ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:
        cropped = pool.map(crop_pixels, paths, [ctx.params] * len(paths))
        for index, image in enumerate(ctx.progress(cropped, total=len(paths), desc="preprocessing")):
            out[index] = image
    out.flush()
    del out
    pixels.write_normalisation(ctx.path, LEVELS["imagenet"], ctx.params["image_mean"], ctx.params["image_std"])


def build_detection(ctx: BuildContext) -> dict:
    """Store the first dataset_size images of a COCO folder's split as uint8 pixels, and their annotations.

    The pixels are [0, 1] model inputs (no normalisation); `labels.npy` holds each sample's
    COCO image id, and annotations/instances_val2017.json the annotations of exactly these
    images in sample order: what the detection task scores against (axq_mlperf.tasks.detection)
    and what MLPerf's tools/accuracy-coco.py reads as its --coco-dir.
    """
    name = ctx.params["dataset_name"]
    return store_detection(ctx, lambda path, image: decoded(path, image, name in GRAYSCALE))


def build_coco(ctx: BuildContext) -> dict:
    """Store a user's COCO images stretched to image_size x image_size (uint8 N x 3 x S x S), and their annotations.

    A plain stretch, as a detector with a square input wants it: boxes normalised by an
    image's own width and height stay valid, and the annotations keep the original sizes,
    which is what the scorer (and MLPerf's accuracy-coco.py) scales normalised boxes back by.
    """
    size = ctx.params["image_size"]
    return store_detection(ctx, lambda path, image: stretched(decoded(path, image, False), size))


def store_detection(ctx: BuildContext, pixels_of: Callable[[Path, dict], Any]) -> dict:
    """Store the first dataset_size images of the dependency's COCO folder (pixels_of each), labels, annotations."""
    import numpy as np

    from axq_mlperf import coco, pixels

    name, split = ctx.params["dataset_name"], ctx.params["split"]
    check_split(name, split)
    folder = ctx.deps["dataset"].call("coco_folder")
    data = coco.read(folder, split)
    count = size_to_use(ctx.params["dataset_size"], len(data["images"]), name, split)
    data = coco.subset(data, count)
    paths = coco.image_paths(folder, data, split)
    stored = np.stack([pixels_of(path, image) for path, image in zip(paths, data["images"], strict=True)])
    np.save(ctx.path / pixels.IMAGES, stored)
    pixels.write_normalisation(ctx.path, LEVELS[name], [0.0] * stored.shape[1], [1.0] * stored.shape[1])
    np.save(ctx.path / "labels.npy", np.array([image["id"] for image in data["images"]], dtype=np.int64))
    coco.write(ctx.path, data, "val")
    ctx.log(f"{name} {split}: {count} images, shape {stored.shape}, {len(data['annotations'])} boxes, stored as uint8")
    return {"count": count, "boxes": len(data["annotations"])}


def stretched(pixels: Any, size: int) -> Any:
    """Return C x H x W uint8 pixels resized (PIL bilinear, no aspect kept) to C x size x size."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


def decoded(path: Path, image: dict, grayscale: bool) -> Any:
    """Return one image's uint8 pixels, C x H x W, checked against the size its annotation gives."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from axq.errors import BuildError

    try:
        with Image.open(path) as opened:
            pixels = np.asarray(opened.convert("L" if grayscale else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise BuildError(f"{path}: not an image that decodes ({error})") from None
    if pixels.shape[:2] != (image["height"], image["width"]):
        raise BuildError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]} pixels; its annotation says "
                         f"{image['width']}x{image['height']}")
    return pixels[None] if grayscale else pixels.transpose(2, 0, 1)


def load_detection(entry: Any) -> tuple[Any, list[Any]]:
    """Return (images as float32 N x C x H x W in [0, 1], per image its boxes: n x 5 [x, y, w, h, category_id])."""
    import numpy as np

    from axq_mlperf import coco, pixels

    data = coco.read(entry.path, "val")
    boxes = [np.asarray(rows, dtype=np.float32).reshape(-1, 5) for rows in coco.boxes_by_image(data)]
    return np.asarray(pixels.open_images(entry.path)), boxes


def describe(params: Params) -> str:
    """Say what the ImageNet preprocessing was, in one phrase."""
    return (f"{params['image_interpolation']} resize to {params['image_resize']}, centre crop "
            f"{params['image_crop']}, mean {params['image_mean']}, std {params['image_std']}")


def load_arrays(entry: Any, mmap: bool = True) -> tuple[Any, Any]:
    """Return (images normalised as float32, labels) of a built entry.

    mmap: the images are an axq_mlperf.pixels.NormalisedImages over the memory-mapped uint8
    file (normalised as rows are read) and the labels a read-only memmap; else both in memory.
    """
    import numpy as np

    from axq_mlperf import pixels

    images = pixels.open_images(entry.path)
    if mmap:
        return images, np.load(entry.path / "labels.npy", mmap_mode="r")
    return np.asarray(images), np.load(entry.path / "labels.npy")


def preprocess_image(path: Path, params: dict) -> Any:
    """Return one image as float32 3 x crop x crop: resize, centre crop, normalise (see the module doc)."""
    from axq_mlperf.pixels import NormalisedImages

    stored = crop_pixels(path, params)[None]
    return NormalisedImages(stored, LEVELS["imagenet"], params["image_mean"], params["image_std"])[0]


def crop_pixels(path: Path, params: dict) -> Any:
    """Return one image's uint8 pixels, 3 x crop x crop: RGB, resize, centre crop (what is stored)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    resized = resize_shorter_side(rgb, params["image_resize"], params["image_interpolation"])
    return np.asarray(centre_crop(resized, params["image_crop"]), dtype=np.uint8).transpose(2, 0, 1)


def resize_shorter_side(image: Any, size: int, interpolation: str = "bilinear") -> Any:
    """Resize a PIL image, keeping its aspect ratio, so its shorter side is size."""
    from PIL import Image

    width, height = image.size
    new = (size, int(size * height / width)) if height > width else (int(size * width / height), size)
    return image.resize(new, Image.Resampling[interpolation.upper()])


def centre_crop(image: Any, size: int) -> Any:
    """Cut the central size x size square out of a PIL image (the reference's rounding)."""
    width, height = image.size
    left, top = int((width - size) / 2), int((height - size) / 2)
    return image.crop((left, top, left + size, top + size))


def check_split(name: str, split: str) -> None:
    """Raise unless split is one the data set has."""
    from axq.errors import BuildError

    if split not in SPLITS[name]:
        choices = " or ".join(f"split={s}" for s in SPLITS[name])
        raise BuildError(f"{name} has no split `{split}`; use {choices}")


def size_to_use(dataset_size: int | None, available: int, name: str, split: str) -> int:
    """Return how many images to take: all when dataset_size is null, else the first N."""
    from axq.errors import BuildError

    if dataset_size is None:
        return available
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) \
            or not 0 < dataset_size <= available:
        raise BuildError(f"dataset_size={dataset_size}: {name} {split} has {available} "
                         f"images; give a whole number from 1 to {available}, or null for all")
    return dataset_size


def expected_seconds(params: dict) -> float:
    """Return about how long preprocessing takes: ImageNet decodes each JPEG (about 10 ms), the others copy arrays."""
    if params["dataset_name"] == "coco":
        return 2 + 0.02 * (params["dataset_size"] or 5_000)
    if params["dataset_name"] != "imagenet":
        return 2.0
    return 2 + 0.01 * (params["dataset_size"] or 50_000)
