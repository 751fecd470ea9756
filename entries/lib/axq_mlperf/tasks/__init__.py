"""What a workload is, declared once: the task seam between the SUT and what a model does.

A task (`task=` of a LoadGen run) says what the runtime's output means and what LoadGen
gets back for each sample; everything else, the SUT, batching, instances, pinning, the
breakdown, warm starts, submission, compliance and `axq explore`, is the same for every
task and never asks which one it has. A task:

- `decode(output)`: the runtime's first output for a batch (a numpy array, or PyTorch's
  tensor, on its device: one row per sample) as the task's answers for it, of the same kind
  (classification: the int64 class
  of each sample; detection: the model's fixed-size detections as they are);
- `responses(size, kind)`: the LoadGen responses an instance fills with a batch's answers
  (axq_mlperf.completion: one fixed-width slot per sample, or data of any size per sample);
- `score(log, dataset)`: the accuracy log of an AccuracyOnly run scored as MLPerf's own
  script for the task scores it, against the preprocessed data set entry: the results keys
  (`accuracy` in percent always, and the task's own: `mAP`, ...);
- `score_answers(answers, dataset)`: the same score of answers got straight from a backend
  (the int8 accuracy guard of entries/model_converted scores fp32 and int8 alike so);
- `result_line(found)`: an accuracy run's result in a few words;
- `accuracy_text(found)`: what MLPerf's accuracy script for the task prints of that result
  (a submission's accuracy.txt, whose figure the submission checker reads with its
  ACC_PATTERN: `accuracy=...%` for classification, `mAP=...%` for detection).

Light at import: the implementations import numpy and their scorers where they use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from axq.errors import ParameterError, did_you_mean

if TYPE_CHECKING:
    import numpy as np

    from axq.entry import Entry
    from axq_mlperf.completion import Responses


class Task(Protocol):
    """One kind of workload: how outputs become answers, answers responses, and an accuracy log a score."""

    name: str

    def decode(self, output: np.ndarray) -> np.ndarray:
        """Return the answers for a batch from the runtime's first output (one row per sample)."""

    def responses(self, size: int, kind: str) -> Responses:
        """Return one instance's LoadGen responses for batches of up to size samples (completion.KINDS)."""

    def score(self, log: Path, dataset: Entry) -> dict[str, Any]:
        """Return the accuracy results of an accuracy log against the preprocessed data set entry."""

    def score_answers(self, answers: np.ndarray, dataset: Entry) -> dict[str, Any]:
        """Return the accuracy results of every sample's answers, in order, against the data set entry."""

    def result_line(self, found: dict[str, Any]) -> str:
        """Return an accuracy run's result in a few words: `accuracy 98.2% (442 of 450 samples)`."""

    def accuracy_text(self, found: dict[str, Any]) -> str:
        """Return what MLPerf's accuracy script for the task prints of an accuracy run's results."""


NAMES = ("image_classification", "object_detection")
DETECTION_SETS = frozenset({"digits_detection", "coco", "openimages"})  # dataset_name= of object_detection


def for_dataset(dataset_name: str) -> str:
    """Return the task a data set is for: object_detection for detection sets, else image_classification."""
    return "object_detection" if dataset_name in DETECTION_SETS else "image_classification"


def of_run(params: Mapping[str, Any]) -> str:
    """Return a run's task: the `task=` its rule names, else what its data set is for."""
    return params.get("task") or for_dataset(params["dataset_name"])


def run_query(dataset_name: str) -> str:
    """Return the query of a LoadGen run on a data set: `loadgen_output,classified_digits`, `...,detected_digits`."""
    if dataset_name == "digits_detection":
        return "loadgen_output,detected_digits"
    return f"loadgen_output,{'detected' if dataset_name in DETECTION_SETS else 'classified'}_{dataset_name}"


def get(name: str) -> Task:
    """Return the task named, or raise ParameterError naming the tasks there are."""
    if name == "image_classification":
        from axq_mlperf.tasks.classification import Classification

        return Classification()
    if name == "object_detection":
        from axq_mlperf.tasks.detection import Detection

        return Detection()
    raise ParameterError("task", name, "is not a task axq runs: " + ", ".join(NAMES) + did_you_mean(name, NAMES))
