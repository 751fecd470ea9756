"""A detection submission: `mlperf_submission` over `detected_digits`, its accuracy.txt as the checker reads it.

One module-scoped build in a private work collection (the real entries/): the digits
detection set, its detector trained for one epoch (`axq set epochs=1`: the tree must give
the run's own mAP, whatever it is, and eight epochs take minutes on a shared CPU), and the
accuracy, performance, TEST01 and TEST04 runs, all short `loadgen_execution=test`
SingleStream runs with real LoadGen. The official checker itself is not in the repository;
its file list and accuracy patterns are (tests/conftest.py), and the README says how to run it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import axq
from axq.entry import Entry
from tests.conftest import checker_files, checker_reads

QUERY = ("mlperf_submission,submitter=axq-ci,system=ci-box,division=open,loadgen_execution=test,"
         "scenarios=SingleStream,benchmark_query='detected_digits,num_threads=1'")
ROOT = "open/axq-ci"
SCENARIO = f"{ROOT}/results/ci-box/digits_detection/SingleStream"


@pytest.fixture(scope="module")
def submission(collection: Path) -> Entry:
    """Build the submission once, its detector trained for one epoch (a collection setting)."""
    axq.set_settings({"epochs": 1})
    return axq.byquery(QUERY)


def tree(submission: Entry) -> Path:
    """Return the directory holding the submission's division folder."""
    return Path(submission.get("submission_path"))


def test_tree_named_after_the_data_set_has_every_file_the_checker_requires(submission: Entry) -> None:
    root = tree(submission)
    missing = [name for name in checker_files("digits_detection")
               if not (root / name).is_file() or not (root / name).stat().st_size]
    assert missing == []
    assert not (root / ROOT / "model_mapping.json").exists()
    assert "Open division: `digits_detection` is a custom model" in (root / SCENARIO / "README.md").read_text()


def test_accuracy_txt_holds_accuracy_coco_output_and_the_checker_reads_the_runs_map(submission: Entry) -> None:
    """The checker's mAP pattern finds one figure, the run's `mAP` getter; COCOeval's summary leads."""
    run = submission.dep("SingleStream_accuracy")
    accuracy = tree(submission) / SCENARIO / "accuracy" / "accuracy.txt"
    figures, hashes = checker_reads(accuracy, "mAP")
    assert figures == [f"{run.get('mAP'):.3f}"]
    assert float(figures[0]) == pytest.approx(run.get("mAP"), abs=5e-4) and run.get("mAP") > 0
    digest = hashlib.sha256((run.path / "mlperf_log_accuracy.json").read_bytes()).hexdigest()
    assert hashes == [digest]
    lines = accuracy.read_text().splitlines()
    assert lines[:12] == [f" {line}" for line in run.get("coco_report")]
    assert lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ")
    assert float(lines[0].rsplit("=", 1)[1]) == pytest.approx(run.get("mAP") / 100, abs=5e-4)
    assert lines[12] == f"mAP={run.get('mAP'):.3f}%"


def test_compliance_runs_of_the_detector_are_verified(submission: Entry) -> None:
    """TEST01 compares whole responses (seven float32 per box) byte for byte: it passes for a deterministic SUT."""
    scenario = tree(submission) / SCENARIO
    assert set(submission.results["compliance"]) == {"SingleStream/TEST01", "SingleStream/TEST04"}
    assert (scenario / "TEST01" / "verify_accuracy.txt").read_text().rstrip().endswith("TEST PASS")
    assert submission.dep("SingleStream_TEST01").get("compliance")["details"]["accuracy"] == "PASS"


def test_an_open_custom_detector_maps_to_yolo_with_mlperf_model(submission: Entry) -> None:
    """The same runs (the tree's names are no part of them), the tree with a model_mapping.json."""
    mapped = axq.byquery(f"{QUERY},mlperf_model=yolo-99")
    assert mapped.dep("SingleStream_accuracy").name == submission.dep("SingleStream_accuracy").name
    root = tree(mapped) / ROOT
    assert json.loads((root / "model_mapping.json").read_text()) == {"digits_detection": "yolo-99"}
    assert "Open division" not in (tree(mapped) / SCENARIO / "README.md").read_text()


@pytest.mark.parametrize(("names", "said"), [
    ("benchmark=yolo-99", "takes only `yolo-99`'s own model (YOLOv11l"),
    ("benchmark=yolo-95", "takes only `yolo-95`'s own model (YOLOv11l"),
    ("benchmark=retinanet,layout=v6.0", "takes only `retinanet`'s own model (RetinaNet ResNeXt50"),
    ("benchmark=ssd_mobilenet", "`ssd_mobilenet` is not one of them"),
    ("", "`null` is not one of them"),
])
def test_closed_division_refuses_a_custom_detector_in_one_line_before_any_build(
        submission: Entry, axq_cli, names: str, said: str) -> None:
    before = {entry.name for entry in axq.list_entries("")}
    query = QUERY.replace("division=open", "division=closed") + (f",{names}" if names else "")
    code, out, err = axq_cli("byquery", query, ",", "get", "submission_path")
    assert (code, out) == (2, "")  # a ParameterError: the user's query, refused
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert said in err and "division=open" in err
    assert {entry.name for entry in axq.list_entries("")} == before


def test_retinanet_needs_a_layout_whose_checker_rules_have_it(submission: Entry, axq_cli) -> None:
    """The checker's v6.1 rules dropped RetinaNet: the tree would be judged by no rules at all."""
    code, out, err = axq_cli("byquery", f"{QUERY},mlperf_model=retinanet", ",", "get", "submission_path")
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert "the checker's v6.1 rules have no `retinanet`: use layout=v5.1 or v6.0" in err


def test_torchvisions_coco_retinanet_is_not_mlperfs_retinanet(collection: Path, axq_cli, tmp_path: Path) -> None:
    """RetinaNet ResNet50-FPN on COCO is no closed `retinanet` (ResNeXt50 on OpenImages): refused unbuilt."""
    query = (f"mlperf_submission,division=closed,benchmark=retinanet,layout=v6.0,loadgen_execution=test,"
             f"benchmark_query='detected_coco,model_name=retinanet_coco,coco_dir={tmp_path}'")
    code, out, err = axq_cli("plan", query)
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert "not retinanet_coco on coco: use division=open (mlperf_model=retinanet maps the model to it)" in err
