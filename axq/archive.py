"""Carry entries between work collections: an archive of an entry's closure, verified on import.

An archive is a gzip'd tar holding

    axq-archive.json    first: the format, the root entry, and per entry its name, identity and
                        files (size and SHA-256 of each file, target of each link)
    <name>/...          each entry's directory as the collection has it

The closure is the entry, its dependencies and the entries its build used, recursively
(`export(have=...)` leaves out entries the receiver already has; the archive then lists
them as required). Import trusts nothing: it extracts into the collection's `.tmp`,
refusing members that would leave their entry directory (`..`, absolute paths, links
pointing out, hard links, devices), recomputes each entry's identity from its manifest
(axq.identity: recipe, version, tags, params, dependency identities), checks every file
against the listing, and refuses a truncated archive or an incomplete closure. Only then
does it publish each entry by one rename (dependencies first) and index it; entries the
collection already has are skipped, and an imported entry that names one of those is
pointed at the local copy (same identity, another build), the original record kept in
its provenance. A refused archive leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from axq.errors import AxqError, EntryNotFound, NotFound
from axq.identity import manifest_identity
from axq.store import MANIFEST, Store, valid_name

INDEX = "axq-archive.json"
FORMAT = 1
IMPORT_PREFIX = "import"  # staging folders are `.tmp/import.*`, guarded by `.locks/import.lock` against gc


class ArchiveError(AxqError):
    """An archive that cannot be written, or that import refuses (nothing of it is kept)."""

    exit_code = 1


@dataclass
class ImportReport:
    """What an import did: entries published, entries the collection already had, links rebased."""

    root: str
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rebased: dict[str, list[str]] = field(default_factory=dict)  # imported entry -> inputs pointed at local copies


# -- export ----------------------------------------------------------------------------------------


def export_archive(target: str, out: str | os.PathLike | IO[bytes], *, work_collection: str | os.PathLike | None = None,
                   have: set[str] | frozenset[str] = frozenset(), overrides: dict[str, Any] | None = None) -> list[str]:
    """Write the archive of an entry (by name, or the built entry a query means) and its closure; return its names.

    `out` is a path (written whole or not at all) or a binary file object. Entries whose
    identity is in `have` are left out with what they need (listed as required).
    """
    store = Store(work_collection)
    root = root_entry(store, target, overrides)
    names, required = closure(store, root, have)
    listing = {"format": FORMAT, "root": root, "entries": [_listing(store, n) for n in names], "requires": required}
    if isinstance(out, (str, os.PathLike)):
        _write_file(store, names, listing, os.fspath(out))
    else:
        write_tar(store, names, listing, out)
    return names


def root_entry(store: Store, target: str, overrides: dict[str, Any] | None = None) -> str:
    """Return the entry a target names: an entry name, else the built entry a query resolves to."""
    if not overrides and valid_name(target) and store.entry_dir(target):
        return target
    from axq.resolve import Scope, resolve

    node = resolve(target, overrides, Scope.of(store))
    name = store.name_for_identity(node.identity, node.name)
    if name is None:
        raise EntryNotFound(f"`{target}` is not built in {store.root} (build it with `axq byquery {target}`)")
    return name


def closure(store: Store, root: str, have: set[str] | frozenset[str] = frozenset()) -> tuple[list[str], list[dict]]:
    """Return the entries an entry needs, dependencies before dependents, and those left out as in `have`."""
    order: list[str] = []
    required: dict[str, dict] = {}
    _visit(store, root, None, have, order, required)
    return order, list(required.values())


def _visit(store: Store, name: str, parent: str | None, have: set[str] | frozenset[str], order: list[str],
           required: dict[str, dict]) -> None:
    """Add an entry's inputs, then the entry, to order (depth first); note inputs the receiver has."""
    if name in order or name in required:
        return
    manifest = store.read_manifest(name)
    if manifest is None:
        needed = f", needed by `{parent}`," if parent else ""
        raise EntryNotFound(f"entry `{name}`{needed} is not in {store.root}")
    if parent is not None and manifest["identity"] in have:
        required[name] = {"name": name, "identity": manifest["identity"]}
        return
    for child in inputs(manifest):
        _visit(store, child["name"], name, have, order, required)
    order.append(name)


def inputs(manifest: dict) -> list[dict]:
    """Return the records (name, identity, ...) of what an entry depends on or used."""
    used = [{"name": k, **v} if isinstance(v, dict) else {"name": k, "identity": v}
            for k, v in manifest.get("used", {}).items()]
    return [*manifest.get("deps", {}).values(), *used]


def _listing(store: Store, name: str) -> dict:
    """Describe one entry for the archive index: name, identity, and every file's size and digest."""
    manifest = store.read_manifest(name) or {}
    return {"name": name, "identity": manifest["identity"], "files": dict(_files(store.path(name), name))}


def _files(directory: str, name: str) -> Iterator[tuple[str, dict]]:
    """Yield (relative path, description) for the files and links of an entry directory."""
    for folder, dirs, files in os.walk(directory):
        dirs.sort()
        for item in sorted(files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            path = os.path.join(folder, item)
            relative = os.path.relpath(path, directory).replace(os.sep, "/")
            yield relative, _describe(path, f"{name}/{relative}")


def _describe(path: str, member: str) -> dict:
    """Describe a file (size, sha256) or a link inside its entry (target); refuse anything else."""
    if os.path.islink(path):
        target = os.readlink(path)
        if not _inside(member, target):
            raise ArchiveError(f"cannot export {member}: it links outside its entry ({target})")
        return {"link": target}
    if not os.path.isfile(path):
        raise ArchiveError(f"cannot export {member}: not a regular file")
    return {"size": os.path.getsize(path), "sha256": _digest(path)}


def _digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_file(store: Store, names: list[str], listing: dict, out: str) -> None:
    """Write the archive to a file atomically: a partial archive is never left under its name."""
    folder = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write_tar(store, names, listing, handle)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def write_tar(store: Store, names: list[str], listing: dict, handle: IO[bytes]) -> None:
    """Write the index, then every entry directory, as a gzip'd tar to an open binary file."""
    with tarfile.open(fileobj=handle, mode="w:gz") as tar:
        data = json.dumps(listing, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(INDEX)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        tar.addfile(info, io.BytesIO(data))
        for name in names:
            tar.add(store.path(name), arcname=name, filter=_anonymous)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Leave out who owned the files."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def archive_bytes(target: str, *, work_collection: str | os.PathLike | None = None,
                  have: set[str] | frozenset[str] = frozenset()) -> bytes:
    """Return the archive of an entry's closure as bytes (what a cluster node sends back)."""
    buffer = io.BytesIO()
    export_archive(target, buffer, work_collection=work_collection, have=have)
    return buffer.getvalue()


# -- import ----------------------------------------------------------------------------------------


def import_archive(source: str | os.PathLike | bytes, *,
                   work_collection: str | os.PathLike | None = None) -> ImportReport:
    """Verify an archive (a path, or its bytes) and publish its entries into the work collection."""
    store = Store(work_collection)
    with store.writing(), _staging(store) as staging:
        listing = extract(source, staging)
        manifests = verify(listing, staging, store)
        return publish(listing, manifests, staging, store)


@contextmanager
def _staging(store: Store) -> Iterator[str]:
    """Make a staging folder in `.tmp` (that gc leaves alone while this runs); remove it at the end."""
    os.makedirs(store.path(".tmp"), exist_ok=True)
    os.makedirs(store.path(".locks"), exist_ok=True)
    with open(store.path(".locks", IMPORT_PREFIX + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        staging = tempfile.mkdtemp(prefix=IMPORT_PREFIX + ".", dir=store.path(".tmp"))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def extract(source: str | os.PathLike | bytes, staging: str) -> dict:
    """Extract a checked archive into staging and return its index; refuse a bad or truncated one."""
    try:
        with _open(source) as tar:
            return _extract_members(tar, staging)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ArchiveError(f"refused {_label(source)}: truncated or not an axq archive ({error})") from None


def _open(source: str | os.PathLike | bytes) -> tarfile.TarFile:
    if isinstance(source, (bytes, bytearray)):
        return tarfile.open(fileobj=io.BytesIO(source), mode="r:gz")
    if not os.path.isfile(source):
        raise NotFound(f"no archive at {os.fspath(source)}")
    return tarfile.open(source, mode="r:gz")


def _label(source: str | os.PathLike | bytes) -> str:
    return "the archive" if isinstance(source, (bytes, bytearray)) else os.fspath(source)


def _extract_members(tar: tarfile.TarFile, staging: str) -> dict:
    """Read the index first, then write each member it allows; links last (nothing is written through one)."""
    first = tar.next()
    if first is None or first.name != INDEX or not first.isfile():
        raise ArchiveError(f"not an axq archive: it does not start with {INDEX}")
    listing = _read_index(tar, first)
    names = {e["name"] for e in listing["entries"]}
    links: list[tarfile.TarInfo] = []
    for member in iter(tar.next, None):
        _check_member(member, names)
        if member.issym():
            links.append(member)
        else:
            _write_member(tar, member, staging)
    for member in links:
        os.symlink(member.linkname, os.path.join(staging, member.name))
    _read_to_end(tar)
    return listing


def _read_to_end(tar: tarfile.TarFile) -> None:
    """Read what follows the last member, so that gzip checks its trailer (a cut archive raises EOFError)."""
    stream = tar.fileobj
    assert stream is not None
    while stream.read(1 << 16):
        pass


def _read_index(tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict:
    """Parse and check the archive index."""
    handle = tar.extractfile(member)
    try:
        listing = json.loads(handle.read() if handle else b"")
    except json.JSONDecodeError as error:
        raise ArchiveError(f"bad {INDEX}: {error}") from None
    entries = listing.get("entries") if isinstance(listing, dict) else None
    if listing.get("format") != FORMAT or not isinstance(entries, list) or not entries:
        raise ArchiveError(f"bad {INDEX}: expected format {FORMAT} with a list of entries")
    for entry in entries:
        if not isinstance(entry, dict) or not valid_name(str(entry.get("name", ""))) \
                or not isinstance(entry.get("files"), dict):
            raise ArchiveError(f"bad {INDEX}: an entry without a plain name and its files: {str(entry)[:80]}")
    if len({e["name"] for e in entries}) < len(entries):
        raise ArchiveError(f"bad {INDEX}: an entry is listed twice")
    return listing


def _check_member(member: tarfile.TarInfo, names: set[str]) -> None:
    """Refuse a member outside its entry directory, or anything but a file, folder or inward link."""
    path = member.name
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts) or parts[0] not in names:
        raise ArchiveError(f"refused: member `{path}` is not inside a listed entry directory")
    if not (member.isreg() or member.isdir() or member.issym()):
        raise ArchiveError(f"refused: member `{path}` is a {_kind(member)}, not a file, folder or link")
    if member.issym() and not _inside(path, member.linkname):
        raise ArchiveError(f"refused: link `{path}` points outside its entry ({member.linkname})")


def _inside(member: str, target: str) -> bool:
    """Say whether a link at `member` (`name/...`) with this target stays inside entry `name`."""
    entry = member.split("/", 1)[0]
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(member), target))
    return not target.startswith("/") and resolved.startswith(entry + "/")


def _kind(member: tarfile.TarInfo) -> str:
    kinds = {tarfile.LNKTYPE: "hard link", tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
             tarfile.FIFOTYPE: "FIFO"}
    return kinds.get(member.type, f"member of type {member.type!r}")


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: str) -> None:
    """Write one folder or file (plain permissions, never over an existing one)."""
    path = os.path.join(staging, member.name)
    if member.isdir():
        os.makedirs(path, exist_ok=True)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None
    try:
        with open(path, "xb") as handle:
            shutil.copyfileobj(source, handle)
    except FileExistsError:
        raise ArchiveError(f"refused: member `{member.name}` appears twice") from None
    os.chmod(path, (member.mode & 0o755) | 0o600)
    os.utime(path, (member.mtime, member.mtime))


def verify(listing: dict, staging: str, store: Store) -> dict[str, dict]:
    """Check every entry against the index and its own manifest; return their manifests, dependencies first."""
    manifests = {}
    for entry in listing["entries"]:
        _check_files(entry, staging)
        manifests[entry["name"]] = _check_identity(entry, staging, store)
    held = {m["identity"] for m in manifests.values()}
    for name, manifest in manifests.items():
        _check_closure(name, manifest, held, store)
    return manifests


def _check_files(entry: dict, staging: str) -> None:
    """Check that the entry directory holds exactly the listed files, with their sizes and digests."""
    name, listed = entry["name"], entry["files"]
    directory = os.path.join(staging, name)
    found = dict(_files(directory, name)) if os.path.isdir(directory) else {}
    missing = sorted(set(listed) - set(found))
    if missing:
        raise ArchiveError(f"refused: {name}/{missing[0]} is missing (truncated archive?)")
    extra = sorted(set(found) - set(listed))
    if extra:
        raise ArchiveError(f"refused: {name}/{extra[0]} is not in the archive's listing")
    for path, description in listed.items():
        if found[path] != description:
            raise ArchiveError(f"refused: {name}/{path} does not match its digest in the listing (tampered?)")


def _check_identity(entry: dict, staging: str, store: Store) -> dict:
    """Recompute the entry's identity from its manifest (it must be the listed one, fitting its name); return it."""
    name = entry["name"]
    manifest = _manifest(staging, name)
    try:
        digest = manifest_identity(manifest)
    except (KeyError, TypeError, AttributeError) as error:
        raise ArchiveError(f"refused: {name}/{MANIFEST} lacks what an identity is made of ({error})") from None
    if not digest == manifest.get("identity") == entry.get("identity") or manifest.get("name") != name \
            or not name.endswith("-" + digest[:16]):
        raise ArchiveError(f"refused: {name} is not what its manifest says (its identity does not match: tampered?)")
    if os.path.lexists(store.path(name)) and (store.read_manifest(name) or {}).get("identity") != digest:
        raise ArchiveError(f"refused: {store.path(name)} exists and is not {name}'s entry")
    return manifest


def _manifest(staging: str, name: str) -> dict:
    """Read an extracted entry's manifest, refusing one that does not read as an object."""
    try:
        with open(os.path.join(staging, name, MANIFEST), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ArchiveError(f"refused: {name}/{MANIFEST} does not read ({error})") from None
    if not isinstance(manifest, dict):
        raise ArchiveError(f"refused: {name}/{MANIFEST} is not an object")
    return manifest


def _check_closure(name: str, manifest: dict, held: set[str], store: Store) -> None:
    """Refuse an entry whose inputs are neither in the archive nor in the collection."""
    for record in inputs(manifest):
        if record.get("identity") not in held and not store.name_for_identity(record["identity"], record["name"]):
            raise ArchiveError(f"refused: {name} needs {record['name']}, which is neither in the archive "
                               f"nor in {store.root}")


# -- publishing ------------------------------------------------------------------------------------


def publish(listing: dict, manifests: dict[str, dict], staging: str, store: Store) -> ImportReport:
    """Publish each verified entry by one rename, skipping those the collection has; return what was done."""
    report = ImportReport(listing.get("root", ""))
    local = {m["identity"]: _stamp_of(store, there) for m in manifests.values()
             if (there := store.name_for_identity(m["identity"], m["name"]))}
    for name, manifest in manifests.items():
        with _entry_lock(store, name):
            if manifest["identity"] in local or store.name_for_identity(manifest["identity"], name):
                report.skipped.append(name)
                continue
            rebased = _rebase(manifest, local)
            if rebased:
                report.rebased[name] = rebased
                _write_manifest(os.path.join(staging, name), manifest)
            os.rename(os.path.join(staging, name), store.path(name))
            store.record(manifest["identity"], name)
            store.note_recipe_root(name, manifest.get("results") or {})
            report.imported.append(name)
    return report


@contextmanager
def _entry_lock(store: Store, name: str) -> Iterator[None]:
    """Hold the lock a build of this entry would hold (see axq.build.identity_lock)."""
    with open(store.path(".locks", name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _stamp_of(store: Store, name: str) -> dict:
    """Return the record a build would keep of the collection's entry `name`."""
    from axq.build import stamp
    from axq.entry import Entry

    return stamp(Entry.load(store, name))


def _rebase(manifest: dict, local: dict[str, dict]) -> list[str]:
    """Point an entry's inputs at the collection's own copies (same identity, another build); return their names.

    The records they replace are kept under `provenance.imported.rebased`, so the entry is not
    stale here for a dependency that the collection built itself.
    """
    originals: dict[str, dict] = {}
    for key, record in manifest.get("deps", {}).items():
        mine = local.get(str(record.get("identity")))
        if mine and mine != record:
            originals[f"deps.{key}"], manifest["deps"][key] = record, mine
    for name, record in list(manifest.get("used", {}).items()):
        mine = local.get(str(record.get("identity"))) if isinstance(record, dict) else None
        if mine and mine != record:
            originals[f"used.{name}"] = manifest["used"].pop(name)
            manifest["used"][mine["name"]] = mine
    if originals:
        manifest.setdefault("provenance", {})["imported"] = {"rebased": originals}
    return sorted(originals)


def _write_manifest(directory: str, manifest: dict) -> None:
    with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
