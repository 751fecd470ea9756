"""The work collection: index rebuild, hand-copied entries, stale index, safe names."""

from __future__ import annotations

import shutil

import axq
from axq.store import Store, valid_name


def test_index_is_rebuilt_when_missing(work):
    entry = axq.byquery("number,value=2")
    shutil.rmtree(work / ".index")
    store = Store(work)
    assert store.name_for_identity(entry.identity) == entry.name
    assert (work / ".index" / "ids" / entry.identity).read_text() == entry.name


def test_hand_copied_entry_is_found_after_reindex(work, tmp_path):
    entry = axq.byquery("number,value=2")
    other = tmp_path / "other"
    axq.byquery("number,value=3", work_collection=other)  # the collection has an index
    shutil.copytree(entry.path, other / "copied-by-hand")
    store = Store(other)
    assert store.name_for_identity(entry.identity) is None
    assert store.reindex() == 2
    assert store.name_for_identity(entry.identity) == "copied-by-hand"
    assert axq.byquery("number,value=2", work_collection=other).name == "copied-by-hand"


def test_stale_index_entry_is_not_trusted(work):
    entry = axq.byquery("number,value=2")
    shutil.rmtree(entry.path)
    assert Store(work).name_for_identity(entry.identity) is None
    rebuilt = axq.byquery("number,value=2")
    assert rebuilt.get("stored") == 2


def test_incomplete_directory_is_not_an_entry(work):
    (work / "half-built").mkdir(parents=True)
    (work / "half-built" / "number.txt").write_text("1")
    assert Store(work).names() == []


def test_names_cannot_escape_the_collection():
    for name in ("../etc", "a/b", ".index", "", "x\0y"):
        assert not valid_name(name)
    assert valid_name("toy_number_number_3-0123456789abcdef")
