"""Register a user's ImageNet validation folder: check it and record its image list.

The folder holds the validation JPEGs and a `val_map.txt` with one `FILE LABEL` line per
image (labels 0..999, as MLPerf's reference uses them). The images are not copied: the
entry keeps the absolute folder and the parsed list (`val_map.tsv`), in val_map order.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axq.entry import BuildContext

VAL_MAP = "val_map.txt"
LIST_FILE = "val_map.tsv"
NUM_CLASSES = 1000
HOW_TO_PROVIDE = ("imagenet_dir must be an ImageNet validation folder holding the "
                  "ILSVRC2012_val_*.JPEG files and a val_map.txt of `FILE LABEL` lines")


def build(ctx: BuildContext) -> dict:
    """Check the folder and its val_map.txt, and record the image list."""
    folder = check_dir(ctx.params["imagenet_dir"])
    items = parse_val_map(folder / VAL_MAP)
    check_files_exist(folder, [name for name, _ in items])
    lines = [f"{name}\t{label}\n" for name, label in items]
    (ctx.path / LIST_FILE).write_text("".join(lines))
    ctx.log(f"imagenet: {len(items)} images in {folder}")
    return {"imagenet_dir": str(folder), "count": len(items)}


def list_images(entry: Any) -> list[tuple[Path, int]]:
    """Return (absolute image path, label) for every image, in val_map order."""
    folder = Path(entry.results["imagenet_dir"])
    rows = (line.split("\t") for line in (entry.path / LIST_FILE).read_text().splitlines())
    return [(folder / name, int(label)) for name, label in rows]


def check_dir(imagenet_dir: str) -> Path:
    """Return the folder as an absolute path, or raise if it or its val_map.txt is missing."""
    from axq.errors import BuildError

    folder = Path(imagenet_dir).expanduser().resolve()
    if not folder.is_dir():
        raise BuildError(f"imagenet_dir={imagenet_dir}: no such folder; {HOW_TO_PROVIDE}")
    if not (folder / VAL_MAP).is_file():
        raise BuildError(f"imagenet_dir={imagenet_dir} has no {VAL_MAP}; {HOW_TO_PROVIDE}")
    return folder


def parse_val_map(path: Path) -> list[tuple[str, int]]:
    """Parse val_map.txt into (file name, label) pairs, naming the first bad line."""
    from axq.errors import BuildError

    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            items.append(parse_line(line, f"{path}, line {number}"))
    if not items:
        raise BuildError(f"{path} lists no images; {HOW_TO_PROVIDE}")
    return items


def parse_line(line: str, where: str) -> tuple[str, int]:
    """Parse one `FILE LABEL` line, with a label in 0..999."""
    from axq.errors import BuildError

    fields = line.split()
    label = fields[1] if len(fields) == 2 else ""
    if not label.isdigit() or int(label) >= NUM_CLASSES:
        raise BuildError(f"{where}: expected `FILE LABEL` with a label in 0..999, "
                         f"found `{line.strip()}`")
    return fields[0], int(label)


def check_files_exist(folder: Path, names: list[str]) -> None:
    """Raise naming the first listed image that is not in the folder, and how many are not."""
    from axq.errors import BuildError

    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise BuildError(f"{folder} lacks {len(missing)} of the {len(names)} images listed "
                         f"in {VAL_MAP}, first {missing[0]}; {HOW_TO_PROVIDE}")
