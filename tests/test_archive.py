"""Archives: export an entry's closure, import it verified; refuse tampered, traversing and truncated ones."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

import axq
from axq import archive
from axq.archive import ArchiveError
from axq.errors import EntryNotFound

POINT = "system_point,value=3"


@pytest.fixture
def built(work: Path) -> Path:
    """Build a toy point (and the number entry it depends on) in the work collection; return the collection."""
    axq.byquery(POINT)
    return work


@pytest.fixture
def exported(built: Path, tmp_path: Path) -> Path:
    """Return an archive of the toy point's closure."""
    out = tmp_path / "point.tgz"
    archive.export_archive(POINT, out)
    return out


def getter_output(collection: Path) -> dict[str, str]:
    """Return every getter's value, as JSON text, of every entry in a collection."""
    found = {}
    for entry in axq.list_entries(work_collection=collection):
        for getter in entry.getters():
            found[f"{entry.name}:{getter}"] = json.dumps(entry.get(getter), sort_keys=True)
    return found


def members(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """Return an archive's members with their contents."""
    with tarfile.open(path, "r:gz") as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]  # type: ignore[union-attr]


def write(path: Path, items: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """Write members (contents replacing their sizes) as a gzip'd tar."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in items:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def nothing_written(collection: Path) -> bool:
    """Say whether a collection holds no entry and no leftover in .tmp."""
    entries = [n for n in os.listdir(collection) if not n.startswith(".")] if collection.exists() else []
    leftovers = os.listdir(collection / ".tmp") if (collection / ".tmp").exists() else []
    return not entries and not leftovers


def test_export_writes_the_closure_with_its_listing(exported: Path) -> None:
    listing = json.loads(members(exported)[0][1] or b"")
    names = [e["name"] for e in listing["entries"]]
    assert members(exported)[0][0].name == archive.INDEX
    assert names[0].startswith("toy_number_number_1-") and names[1].startswith("toy_system_system_point_3-")
    assert listing["root"] == names[1] and listing["requires"] == []
    assert {"figure.txt", "manifest.json", "build.log"} <= set(listing["entries"][1]["files"])


def test_import_into_an_empty_collection_gives_byte_identical_getters(exported: Path, built: Path,
                                                                      tmp_path: Path) -> None:
    other = tmp_path / "other"
    report = archive.import_archive(exported, work_collection=other)
    assert len(report.imported) == 2 and report.skipped == []
    assert getter_output(other) == getter_output(built) and getter_output(other)
    assert axq.stale_reasons(axq.list_entries(work_collection=other), work_collection=other) == {}
    again = archive.import_archive(exported, work_collection=other)
    assert again.imported == [] and len(again.skipped) == 2


def test_an_imported_entry_answers_its_query_from_the_index(exported: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    archive.import_archive(exported, work_collection=other)
    steps = axq.plan(POINT, work_collection=other)
    assert [s.cached for s in steps] == [True, True]


def test_the_cli_exports_and_imports(built: Path, tmp_path: Path, axq_cli) -> None:
    out = tmp_path / "cli.tgz"
    code, printed, _ = axq_cli("export", POINT, "--out", str(out))
    assert code == 0 and "2 entries" in printed and out.is_file()
    code, printed, _ = axq_cli("import", str(out), "--work-collection", str(tmp_path / "other"), "--json")
    assert code == 0 and len(json.loads(printed)["imported"]) == 2
    code, _, err = axq_cli("export", "system_point,value=99", "--out", str(tmp_path / "x.tgz"))
    assert code == 2 and "is not built" in err and not (tmp_path / "x.tgz").exists()


def test_exporting_a_query_never_builds(work: Path, tmp_path: Path) -> None:
    with pytest.raises(EntryNotFound, match="is not built"):
        archive.export_archive(POINT, tmp_path / "x.tgz")
    assert not list(work.glob("toy_*"))


def tampered_file(path: Path, tmp: Path) -> Path:
    items = members(path)
    items = [(m, b"999\n" if m.name.endswith("figure.txt") else d) for m, d in items]
    return write(tmp / "file.tgz", items)


def tampered_params(path: Path, tmp: Path) -> Path:
    """Change the point's parameters and fix the listing's digest: only the identity can tell."""
    items = members(path)
    listing = json.loads(items[0][1] or b"")
    changed = {}
    for info, data in items[1:]:
        if info.name.endswith("manifest.json") and "system_point" in info.name:
            manifest = json.loads(data or b"")
            manifest["params"]["value"] = 4
            changed[info.name] = json.dumps(manifest).encode()
    for entry in listing["entries"]:
        key = f"{entry['name']}/manifest.json"
        if key in changed:
            entry["files"]["manifest.json"] = {"size": len(changed[key]),
                                               "sha256": hashlib.sha256(changed[key]).hexdigest()}
    items = [(items[0][0], json.dumps(listing).encode())] + [(m, changed.get(m.name, d)) for m, d in items[1:]]
    return write(tmp / "params.tgz", items)


def extra_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> object:
    def make(path: Path, tmp: Path) -> Path:
        info = tarfile.TarInfo(name.replace("ENTRY", members(path)[1][0].name.split("/")[0]))
        info.type, info.linkname = kind, link
        data = b"evil\n" if kind == tarfile.REGTYPE else None
        return write(tmp / "extra.tgz", [*members(path), (info, data)])

    return make


def truncated(share: float) -> object:
    def make(path: Path, tmp: Path) -> Path:
        data = path.read_bytes()
        (tmp / "cut.tgz").write_bytes(data[:int(len(data) * share)] if share < 1 else data[:-4])
        return tmp / "cut.tgz"

    return make


def dropped_file(path: Path, tmp: Path) -> Path:
    return write(tmp / "dropped.tgz", [(m, d) for m, d in members(path) if not m.name.endswith("figure.txt")])


@pytest.mark.parametrize(("make", "reason"), [
    (tampered_file, "does not match its digest"),
    (tampered_params, "identity does not match"),
    (extra_member("ENTRY/../../escaped.txt"), "not inside a listed entry"),
    (extra_member("/tmp/axq-absolute.txt"), "not inside a listed entry"),
    (extra_member("stranger/file.txt"), "not inside a listed entry"),
    (extra_member("ENTRY/out", tarfile.SYMTYPE, "../../../etc/passwd"), "points outside its entry"),
    (extra_member("ENTRY/abs", tarfile.SYMTYPE, "/etc/passwd"), "points outside its entry"),
    (extra_member("ENTRY/hard", tarfile.LNKTYPE, "ENTRY/manifest.json"), "hard link"),
    (extra_member("ENTRY/dev", tarfile.CHRTYPE), "character device"),
    (extra_member("ENTRY/fifo", tarfile.FIFOTYPE), "FIFO"),
    (extra_member("ENTRY/new.txt"), "not in the archive's listing"),
    (dropped_file, "is missing"),
    (truncated(0.5), "truncated"),
    (truncated(0.95), "truncated"),
    (truncated(1), "truncated"),
], ids=["file", "params", "dotdot", "absolute", "stranger", "link-out", "link-absolute", "hardlink", "device", "fifo",
        "unlisted", "dropped", "half", "most", "trailer"])
def test_a_bad_archive_is_refused_with_nothing_written(exported: Path, tmp_path: Path, make, reason: str) -> None:
    bad = make(exported, tmp_path)
    other = tmp_path / "other"
    with pytest.raises(ArchiveError, match=reason):
        archive.import_archive(bad, work_collection=other)
    assert nothing_written(other)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/axq-absolute.txt").exists()


def test_a_refused_archive_is_one_line_exit_1_on_the_cli(exported: Path, tmp_path: Path, axq_cli) -> None:
    bad = truncated(0.5)(exported, tmp_path)  # type: ignore[operator]
    code, _, err = axq_cli("import", str(bad), "--work-collection", str(tmp_path / "other"))
    assert code == 1 and err.count("\n") == 1 and "truncated" in err and "Traceback" not in err


def test_an_archive_without_what_its_entries_need_is_refused(built: Path, tmp_path: Path) -> None:
    number = axq.byquery("number,value=1")
    out = tmp_path / "partial.tgz"
    names = archive.export_archive(POINT, out, have={number.identity})
    assert len(names) == 1
    other = tmp_path / "other"
    with pytest.raises(ArchiveError, match="neither in the archive nor in"):
        archive.import_archive(out, work_collection=other)
    assert nothing_written(other)


def test_an_entry_needing_a_local_copy_is_pointed_at_it_and_not_stale(exported: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    own = axq.byquery("number,value=1", work_collection=other)
    manifest = own.path / "manifest.json"  # built at another time than the archive's copy
    data = json.loads(manifest.read_text())
    data["provenance"]["finished"] = "2001-01-01T00:00:00+0000"
    manifest.write_text(json.dumps(data))
    own = axq.byname(own.name, work_collection=other)
    report = archive.import_archive(exported, work_collection=other)
    assert report.skipped == [own.name] and len(report.imported) == 1
    point = axq.byname(report.imported[0], work_collection=other)
    assert report.rebased == {point.name: ["deps.base"]}
    assert point.manifest["deps"]["base"]["built"] == own.manifest["provenance"]["finished"]
    assert "deps.base" in point.manifest["provenance"]["imported"]["rebased"]
    assert axq.stale_reasons([point], work_collection=other) == {}


def test_export_by_name_and_a_missing_dependency(built: Path, tmp_path: Path) -> None:
    point = axq.byquery(POINT)
    assert archive.export_archive(point.name, tmp_path / "a.tgz")[-1] == point.name
    os.rename(built / point.dep("base").name, tmp_path / "gone")
    with pytest.raises(EntryNotFound, match="needed by"):
        archive.export_archive(point.name, tmp_path / "b.tgz")
    assert not (tmp_path / "b.tgz").exists()
