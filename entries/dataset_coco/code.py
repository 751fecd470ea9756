"""Register a user's COCO validation folder: check its layout, its annotation file and its images.

The images are not copied: the entry keeps the absolute folder (`coco_dir`), which the
preprocessing reads through axq_mlperf.coco as it reads the embedded digits detection set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axq.entry import BuildContext


def build(ctx: BuildContext) -> dict:
    """Check the folder: its annotation file is COCO instances and every image it names is there."""
    from axq_mlperf import coco

    folder = Path(ctx.params["coco_dir"]).expanduser().resolve()
    data = coco.read(folder, "val")
    coco.image_paths(folder, data, "val")
    ctx.log(f"coco: {len(data['images'])} images, {len(data['annotations'])} boxes, "
            f"{len(data['categories'])} categories in {folder}")
    return {"coco_dir": str(folder), "count": len(data["images"]), "boxes": len(data["annotations"]),
            "num_classes": len(data["categories"])}


def coco_folder(entry: Any) -> Path:
    """Return the COCO folder the entry registered."""
    return Path(entry.results["coco_dir"])
