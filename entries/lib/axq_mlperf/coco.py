"""Read a COCO-layout detection folder: images in `val2017/` (or `train2017/`), boxes in `annotations/`.

The layout is COCO 2017's as MLPerf's reference harness reads it (`--coco-dir`):
`annotations/instances_val2017.json` (images, annotations with `bbox` [x, y, w, h] in
pixels and `category_id`, categories) and the images it names in `val2017/`. MLPerf's
filtered YOLO subset ("coco_safe") has the same layout. The embedded digits detection set
(entries/dataset_digits_detection) is written in it too, so one loader reads both.

Every fault is the user's: a missing folder or annotation file, a file that is not COCO
JSON, an image the file names that is not there; each is one line naming the path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axq.errors import BuildError

SPLITS = {"val": "val2017", "test": "val2017", "train": "train2017"}  # split= -> the folder and json suffix
LAYOUT = "a COCO folder holds annotations/instances_val2017.json and the images it names in val2017/"


def annotation_file(folder: Path, split: str = "val") -> Path:
    """Return the annotation file of a split of a COCO folder."""
    return Path(folder) / "annotations" / f"instances_{SPLITS[split]}.json"


def image_folder(folder: Path, split: str = "val") -> Path:
    """Return the image folder of a split of a COCO folder."""
    return Path(folder) / SPLITS[split]


def read(folder: Path, split: str = "val") -> dict[str, Any]:
    """Return the annotation file's contents, checked: images, annotations and categories, each well formed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BuildError(f"{folder}: no such folder; {LAYOUT}")
    path = annotation_file(folder, split)
    if not path.is_file():
        raise BuildError(f"{folder} has no {path.relative_to(folder)}; {LAYOUT}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BuildError(f"{path} is not JSON ({error})") from None
    check(data, path)
    return data


def check(data: Any, path: Path) -> None:
    """Raise BuildError unless data is COCO instances: images with id/file_name/width/height, boxed annotations."""
    if not isinstance(data, dict) or not all(isinstance(data.get(key), list)
                                             for key in ("images", "annotations", "categories")):
        raise BuildError(f"{path} is not a COCO instances file (it needs lists `images`, `annotations` "
                         f"and `categories`)")
    for image in data["images"]:
        if not isinstance(image, dict) or not {"id", "file_name", "width", "height"} <= set(image):
            raise BuildError(f"{path}: an image without id, file_name, width and height: {str(image)[:80]}")
    for annotation in data["annotations"]:
        if not isinstance(annotation, dict) or not {"image_id", "bbox", "category_id"} <= set(annotation) \
                or len(annotation["bbox"]) != 4:
            raise BuildError(f"{path}: an annotation without image_id, bbox [x, y, w, h] and category_id: "
                             f"{str(annotation)[:80]}")
    if not data["images"]:
        raise BuildError(f"{path} lists no images; {LAYOUT}")


def image_paths(folder: Path, data: dict[str, Any], split: str = "val") -> list[Path]:
    """Return the path of every image the annotation file lists, in its order; raise naming a missing one."""
    images = image_folder(folder, split)
    paths = [images / image["file_name"] for image in data["images"]]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise BuildError(f"{images} lacks {len(missing)} of the {len(paths)} images "
                         f"{annotation_file(folder, split).name} lists, first {missing[0].name}; {LAYOUT}")
    return paths


def subset(data: dict[str, Any], count: int) -> dict[str, Any]:
    """Return the annotation file cut to its first count images (in order) and their annotations."""
    return pick(data, list(range(min(count, len(data["images"])))))


def pick(data: dict[str, Any], indices: list[int]) -> dict[str, Any]:
    """Return the annotation file cut to the images at these positions (in that order) and their annotations."""
    images = [data["images"][i] for i in indices]
    kept = {image["id"] for image in images}
    return {**data, "images": images,
            "annotations": [a for a in data["annotations"] if a["image_id"] in kept]}


def boxes_by_image(data: dict[str, Any]) -> list[list[list[float]]]:
    """Return, for each image in order, its annotations as [x, y, w, h, category_id] in pixels."""
    found: dict[Any, list[list[float]]] = {image["id"]: [] for image in data["images"]}
    for annotation in data["annotations"]:
        if annotation["image_id"] in found:
            found[annotation["image_id"]].append([*map(float, annotation["bbox"]), float(annotation["category_id"])])
    return [found[image["id"]] for image in data["images"]]


def write(folder: Path, data: dict[str, Any], split: str = "val") -> Path:
    """Write an annotation file into a COCO folder; return its path."""
    path = annotation_file(folder, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
