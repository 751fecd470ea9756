"""Object detection: a sample's answer is its detections, its response their boxes in MLPerf's layout.

The model's output for a batch is fixed-size, N x K x 6 float32: per detection [ymin,
xmin, ymax, xmax] normalised to [0, 1] by the image's size, its score and its category id
(decoding, top-k included, happens in the model, so every runtime runs the same graph).
A response holds the detections scoring at least SCORE_THRESHOLD, each as seven float32
values [sample index, ymin, xmin, ymax, xmax, score, category id]: MLPerf's detection
format, as the reference harnesses write it, so that mlcommons/inference's
tools/accuracy-coco.py scores an axq accuracy log exactly as axq does (a sample with none
has an empty response).

Scoring is that script's: pycocotools' COCOeval (bbox) over the images that were answered,
against the preprocessed entry's annotations/instances_val2017.json, whose images are in
the order of LoadGen's sample indices; the boxes scaled back by each image's width and
height. `mAP` is mAP@[.5:.95] in percent, as the script prints it.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from axq.entry import Entry
    from axq_mlperf.completion import Responses

SCORE_THRESHOLD = 0.05  # the least score a detection needs to be in a response (MLPerf's RetinaNet: 0.05)
FIELDS = 7  # a detection in a response: sample index, ymin, xmin, ymax, xmax, score, category id
ANNOTATIONS = Path("annotations") / "instances_val2017.json"  # in a preprocessed entry, as the script reads it


class Detection:
    """task=object_detection: fixed-size detections in, MLPerf's float32 boxes out, COCO mAP."""

    name = "object_detection"

    def decode(self, output: np.ndarray) -> np.ndarray:
        """Return the detections as they come (N x K x 6 float32): the model decodes its own."""
        return output

    def responses(self, size: int, kind: str) -> Responses:
        """Return responses of any size per sample, each a run of MLPerf's seven-float detections."""
        from axq_mlperf import completion

        return completion.SizedResponses(completion.carrier(size, kind), encode)

    def score(self, log: Path, dataset: Entry) -> dict[str, Any]:
        """Return mAP@[.5:.95] in percent (also as `accuracy`), COCOeval's report and counts."""
        return coco_map(logged(json.loads(Path(log).read_text(encoding="utf-8"))), dataset.path / ANNOTATIONS)

    def score_answers(self, answers: np.ndarray, dataset: Entry) -> dict[str, Any]:
        """Return the mAP of every sample's detections (N x K x 6, in sample order), as an accuracy log's."""
        return answers_map(answers, dataset.path / ANNOTATIONS)

    def result_line(self, found: dict[str, Any]) -> str:
        """Return `mAP 62.345% (450 images, 1270 detections)`."""
        return f"mAP {found['mAP']:.3f}% ({found['images']} images, {found['detections']} detections)"

    def accuracy_text(self, found: dict[str, Any]) -> str:
        """Return what accuracy-coco.py (and accuracy-openimages.py) print: COCOeval's summary, then `mAP=62.345%`.

        COCOeval starts each summary line with a space; the checker's `mAP` pattern matches the last only.
        """
        return "\n".join([*(f" {line}" for line in found["coco_report"]), f"mAP={found['mAP']:.3f}%"])


def encode(answers: np.ndarray, indices: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return a batch's response data: one float32 array, each sample's byte offset in it, and its size.

    answers: N x K x 6 detections; indices: the N samples' data set indices (the first value
    of each of their detections).
    """
    import numpy as np

    kept = answers[..., 4] >= SCORE_THRESHOLD
    counts = kept.sum(1)
    data = np.empty((int(counts.sum()), FIELDS), dtype=np.float32)
    data[:, 0] = np.repeat(np.asarray(indices, dtype=np.float32), counts)
    data[:, 1:] = answers[kept]
    sizes = counts * (FIELDS * 4)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return data, offsets, sizes


def logged(records: list[dict]) -> list[tuple[int, np.ndarray]]:
    """Return (sample index, its detections as rows of FIELDS float32) of each accuracy log record."""
    import numpy as np

    return [(record["qsl_idx"], np.frombuffer(bytes.fromhex(record["data"]), np.float32).reshape(-1, FIELDS))
            for record in records]


def detections(samples: list[tuple[int, np.ndarray]], images: list[dict]) -> tuple[list[dict], set[int]]:
    """Return pycocotools' detections (pixels, x y w h) of answered samples, and the image ids answered.

    A sample answered twice counts once (LoadGen may send one image more than once).
    """
    found: list[dict] = []
    answered: set[int] = set()
    for index, rows in samples:
        image = images[index]
        if image["id"] in answered:
            continue
        answered.add(image["id"])
        height, width = image["height"], image["width"]
        for sample, ymin, xmin, ymax, xmax, score, label in rows.tolist():
            if int(sample) != index:
                raise ValueError(f"the accuracy log's sample {index} holds a detection of sample {int(sample)}")
            found.append({"image_id": image["id"], "category_id": int(label), "score": float(score),
                          "bbox": [xmin * width, ymin * height, (xmax - xmin) * width, (ymax - ymin) * height]})
    return found, answered


def answers_map(answers: np.ndarray, annotations: Path) -> dict[str, Any]:
    """Return coco_map of every sample's detections (N x K x 6, in sample order) as LoadGen would get them."""
    import numpy as np

    data, offsets, sizes = encode(answers, np.arange(len(answers)))
    rows = data.reshape(-1)
    samples = [(index, rows[offset // 4:(offset + size) // 4].reshape(-1, FIELDS))
               for index, (offset, size) in enumerate(zip(offsets.tolist(), sizes.tolist(), strict=True))]
    return coco_map(samples, annotations)


def coco_map(samples: list[tuple[int, np.ndarray]], annotations: Path) -> dict[str, Any]:
    """Return COCOeval's bbox mAP of answered samples' detections against a COCO annotation file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
    found, answered = detections(samples, truth.dataset["images"])
    report = io.StringIO()
    mean_ap = 0.0
    if found:  # loadRes refuses an empty list: no detection at all scores 0
        with contextlib.redirect_stdout(report):
            evaluation = COCOeval(truth, truth.loadRes(found), iouType="bbox")
            evaluation.params.imgIds = sorted(answered)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        mean_ap = float(evaluation.stats[0])
    percent = round(100.0 * max(mean_ap, 0.0), 6)  # COCOeval says -1 where nothing could be scored
    return {"mAP": percent, "accuracy": percent, "images": len(answered), "detections": len(found),
            "coco_report": summary_lines(report.getvalue())}


def summary_lines(text: str) -> list[str]:
    """Return COCOeval's twelve summary lines (Average Precision / Recall), without its progress chatter."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("Average")]
