"""Image classification: the answer is a sample's class, its response that class as a little-endian int64.

Scored as MLPerf's tools/accuracy-imagenet.py scores it: top-1, the share of samples whose
response is the label.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from axq.entry import Entry
    from axq_mlperf.completion import Responses


class Classification:
    """task=image_classification: argmax of the logits, one int64 per response, top-1 accuracy."""

    name = "image_classification"

    def decode(self, output: np.ndarray) -> np.ndarray:
        """Return the int64 class of each row of the logits (numpy's or torch's: both argmax to int64 here)."""
        return output.argmax(1)

    def responses(self, size: int, kind: str) -> Responses:
        """Return fixed-width responses: each points at its own int64 slot."""
        from axq_mlperf import completion

        return completion.responses(size, kind)

    def score(self, log: Path, dataset: Entry) -> dict[str, Any]:
        """Return accuracy in percent, good and total from the accuracy log's predicted classes."""
        _, labels = dataset.call("load_arrays")
        predicted = predictions(log)
        good = sum(1 for index, label in predicted.items() if int(labels[index]) == label)
        total = len(predicted)
        return {"accuracy": round(100.0 * good / total, 6) if total else 0.0, "good": good, "total": total}

    def score_answers(self, answers: np.ndarray, dataset: Entry) -> dict[str, Any]:
        """Return top-1 accuracy in percent, good and total of every sample's predicted class."""
        _, labels = dataset.call("load_arrays")
        good, total = int((answers == labels[:len(answers)]).sum()), len(answers)
        return {"accuracy": round(100.0 * good / total, 6) if total else 0.0, "good": good, "total": total}

    def result_line(self, found: dict[str, Any]) -> str:
        """Return `accuracy 98.222% (442 of 450 samples)`."""
        return f"accuracy {found['accuracy']:.3f}% ({found['good']} of {found['total']} samples)"

    def accuracy_text(self, found: dict[str, Any]) -> str:
        """Return accuracy-imagenet.py's line: `accuracy=98.222%, good=442, total=450`."""
        return f"accuracy={found['accuracy']:.3f}%, good={found['good']}, total={found['total']}"


def predictions(log: Path) -> dict[int, int]:
    """Return {sample index: predicted class} from an accuracy log of int64 responses."""
    records = json.loads(Path(log).read_text(encoding="utf-8"))
    return {r["qsl_idx"]: int.from_bytes(bytes.fromhex(r["data"]), "little", signed=True) for r in records}
