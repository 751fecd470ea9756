"""Keep built entries on disk: the work collection, its index, memo, locks and logs.

Layout of a work collection:

    <name>/manifest.json        a built entry (visible only once complete)
    .index/ids/<identity>       the entry directory name for an identity
    .index/memo/<key>           the entry directory name for a query text + recipe set
    .locks/<identity>.lock      held while that identity is being built
    .tmp/<name>.<pid>.<rand>/   builds in progress (never looks complete)
    .logs/<name>.log            build logs while building, and of failed builds
    .settings.json              collection settings: parameter defaults set with `axq set`
    .collections.json           entries whose recipes join this collection's search path

Lookups are single file reads, so their cost does not grow with the number of entries.
This module is on the cached-query path: it imports nothing heavy at the top.
"""

from __future__ import annotations

import json
import os

from axq import locations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MANIFEST = "manifest.json"
UNWRITABLE = {13, 1, 30, 28, 122}  # EACCES, EPERM, EROFS, ENOSPC, EDQUOT (no errno import: the cached path)
SETTINGS = ".settings.json"
COLLECTIONS = ".collections.json"  # entries holding recipes (git_repo,collection): name -> recipe root


def read_text(path: str) -> str | None:
    """Return a small file's text, or None if it is missing."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_atomically(path: str, text: str) -> None:
    """Write text to path so that readers see the old file or the new, never half."""
    tmp = f"{path}.{os.getpid()}.tmp"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as error:  # a full disk: leave no half-written file behind, and say which file it was
        if os.path.exists(tmp):
            os.unlink(tmp)
        error.filename = error.filename or path
        raise


class Store:
    """A work collection directory."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = locations.work_collection(root)

    def path(self, *parts: str) -> str:
        """Join parts under the work collection root."""
        return os.path.join(self.root, *parts)

    def writing(self, entry: str = "") -> _Writing:
        """Create the collection if needed; turn a collection that can't be written into one clear error.

        `entry` names what is being built, for the message.
        """
        return _Writing(self, entry)

    def _is_ours(self, error: OSError) -> bool:
        """Say whether an OS error is about the collection itself (not a file a recipe reads)."""
        paths = [p for p in (error.filename, getattr(error, "filename2", None)) if p]
        return any(os.path.abspath(os.fspath(p)).startswith(self.root) or self.root.startswith(
            os.path.abspath(os.fspath(p))) for p in paths)

    # -- lookups (cheap; on the cached path) ------------------------------------------

    def entry_dir(self, name: str) -> str | None:
        """Return the directory of a complete entry called `name`, or None."""
        if not valid_name(name):
            return None
        directory = self.path(name)
        return directory if os.path.isfile(os.path.join(directory, MANIFEST)) else None

    def read_manifest(self, name: str) -> dict | None:
        """Return an entry's manifest, or None if there is no complete entry `name`."""
        text = read_text(self.path(name, MANIFEST)) if valid_name(name) else None
        return json.loads(text) if text else None

    def name_for_identity(self, identity: str, expected_name: str | None = None) -> str | None:
        """Return the entry directory holding `identity`, via the index (then its own name)."""
        self.ensure_index()
        name = read_text(self.path(".index", "ids", identity))
        for candidate in (name, expected_name):
            if candidate and self._holds(candidate, identity):
                if candidate != name:
                    self.cache(self.record, identity, candidate)
                return candidate
        return None

    def _holds(self, name: str, identity: str) -> bool:
        """Say whether entry `name` exists and has this identity."""
        manifest = self.read_manifest(name)
        return manifest is not None and manifest.get("identity") == identity

    def memo_lookup(self, key: str) -> str | None:
        """Return the entry name memoised for a query key, if that entry still exists."""
        text = read_text(self.path(".index", "memo", _memo_file(key)))
        name, _, recorded = (text or "").partition("\n")
        return name if name and recorded == key and self.entry_dir(name) else None

    def memo_record(self, key: str, name: str) -> None:
        """Memoise that a query key resolves to entry `name` (the file keeps the key: a clash is a miss)."""
        write_atomically(self.path(".index", "memo", _memo_file(key)), f"{name}\n{key}")

    # -- collection settings (`axq set`): parameter defaults of this work collection ----------

    def settings(self) -> dict:
        """Return the collection settings (parameter name -> value)."""
        text = read_text(self.path(SETTINGS))
        return json.loads(text) if text else {}

    def write_settings(self, settings: dict) -> None:
        """Replace the collection settings, and forget memoised queries (they may mean other entries now)."""
        import shutil

        write_atomically(self.path(SETTINGS), json.dumps(settings, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(self.path(".index", "memo"), ignore_errors=True)

    # -- recipe collections: entries whose results name a `recipe_root` ---------------------

    def recipe_roots(self) -> tuple[str, ...]:
        """Return the recipe roots of collection entries in this work collection, in build order."""
        return tuple(root for name, root in self._roots().items() if self.entry_dir(name))

    def note_recipe_root(self, name: str, results: dict) -> None:
        """Add an entry's recipes to the search path if its results name a `recipe_root`."""
        root = results.get("recipe_root") if isinstance(results, dict) else None
        if root:
            self._write_roots({**self._roots(), name: os.path.join(self.path(name), root)})

    def drop_recipe_root(self, name: str) -> None:
        """Take a removed entry's recipes off the search path."""
        roots = self._roots()
        if name in roots:
            del roots[name]
            self._write_roots(roots)

    def _roots(self) -> dict[str, str]:
        text = read_text(self.path(COLLECTIONS))
        return json.loads(text) if text else {}

    def _write_roots(self, roots: dict[str, str]) -> None:
        import shutil

        write_atomically(self.path(COLLECTIONS), json.dumps(roots, indent=2) + "\n")
        shutil.rmtree(self.path(".index", "memo"), ignore_errors=True)

    # -- the index --------------------------------------------------------------------

    def record(self, identity: str, name: str) -> None:
        """Index entry `name` under its identity."""
        write_atomically(self.path(".index", "ids", identity), name)

    def ensure_index(self) -> None:
        """Rebuild the index if it is missing (a fresh or hand-assembled collection)."""
        if os.path.isdir(self.root) and not os.path.isdir(self.path(".index", "ids")):
            self.cache(self._reindex)

    def cache(self, write: Callable[..., object], *args: str) -> None:
        """Write what only saves time later (the index, the memo); skip it where the collection can't be written.

        A read-only collection (or one on a full disk) still answers from what is built.
        """
        try:
            write(*args)
        except OSError as error:
            if error.errno not in UNWRITABLE:
                raise

    def reindex(self) -> int:
        """Rebuild the index from the entry directories; return how many it holds.

        A collection that cannot be created or written is one WorkCollectionError (exit 1).
        """
        with self.writing():
            return self._reindex()

    def _reindex(self) -> int:
        """Rebuild the index; OS errors pass (ensure_index skips what it cannot write)."""
        index = self.path(".index")
        fresh = f"{index}.{os.getpid()}.new"
        os.makedirs(os.path.join(fresh, "ids"), exist_ok=True)
        count = 0
        for name, manifest in self.manifests():
            with open(os.path.join(fresh, "ids", manifest["identity"]), "w") as handle:
                handle.write(name)
            self.note_recipe_root(name, manifest.get("results") or {})
            count += 1
        self._swap_in(fresh, index)
        return count

    def _swap_in(self, fresh: str, index: str) -> None:
        """Replace the index directory by `fresh`, keeping the memo (it names entries)."""
        import shutil

        old = f"{index}.{os.getpid()}.old"
        if os.path.isdir(os.path.join(index, "memo")):
            os.rename(os.path.join(index, "memo"), os.path.join(fresh, "memo"))
        if os.path.isdir(index):
            os.rename(index, old)
        os.rename(fresh, index)
        shutil.rmtree(old, ignore_errors=True)

    def forget(self, identity: str) -> None:
        """Drop an identity from the index and clear the memo."""
        import contextlib
        import shutil

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(".index", "ids", identity))
        shutil.rmtree(self.path(".index", "memo"), ignore_errors=True)

    # -- walking (for list, rm, gc; not on the cached path) ----------------------------

    def names(self) -> list[str]:
        """List the names of complete entries, sorted."""
        try:
            candidates = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in candidates if not n.startswith(".") and self.entry_dir(n))

    def manifests(self) -> Iterator[tuple[str, dict]]:
        """Yield (name, manifest) for every complete entry whose manifest reads."""
        for name in self.names():
            try:
                manifest = self.read_manifest(name)
            except json.JSONDecodeError:
                continue
            if manifest and "identity" in manifest:
                yield name, manifest


class _Writing:
    """Context of writes to a collection (a class, not contextlib: this module is on the cached path)."""

    def __init__(self, store: Store, entry: str = "") -> None:
        self.store, self.entry = store, entry

    def __enter__(self) -> None:
        try:
            os.makedirs(self.store.root, exist_ok=True)
        except OSError as error:
            self.__exit__(type(error), error, None)
            raise
        if not os.access(self.store.root, os.W_OK):  # before anything is built in it
            raise self._error(_unwritable(self.store.root))

    def __exit__(self, kind: type | None, error: BaseException | None, trace: object) -> None:
        """Raise WorkCollectionError for an OS error about the collection itself (not a file a recipe reads)."""
        unusable = (FileNotFoundError, NotADirectoryError, FileExistsError, PermissionError)
        if isinstance(error, OSError) and (isinstance(error, unusable) or error.errno in UNWRITABLE) \
                and self.store._is_ours(error):
            raise self._error(_problem(error, self.store.root)) from None

    def _error(self, problem: str) -> Exception:
        from axq.errors import WorkCollectionError

        building = f"cannot build {self.entry}: " if self.entry else ""
        return WorkCollectionError(f"{building}work collection {self.store.root} cannot be used: {problem}")


def _unwritable(root: str) -> str:
    """Say why a collection directory can't be written: a read-only file system, or its permissions."""
    if os.statvfs(root).f_flag & os.ST_RDONLY:
        return "it is on a read-only file system"
    return "not writable (permission denied)"


def _problem(error: OSError, root: str) -> str:
    """Say what is wrong with a collection path, in words a user can act on."""
    if isinstance(error, (NotADirectoryError, FileExistsError)):
        return "a file is in the way (it must be a directory)"
    where = f": {error.filename}" if error.filename and os.path.abspath(os.fspath(error.filename)) != root else ""
    if error.errno == 30:
        return f"it is on a read-only file system{where}"
    if error.errno in (28, 122):
        return f"no space left on its disk ({error.strerror}{where})"
    if isinstance(error, PermissionError):
        return f"not writable ({error.strerror}{where})"
    return f"cannot be created ({error.strerror}: {error.filename})"


def memo_key(*parts: str) -> str:
    """Key the query memo by the query text and overrides as given, the recipe set and the host.

    The host matters because a default may be computed from the machine (a measuring
    system's fingerprint): a collection copied to another machine must not answer from the
    memo with this one's entries.
    """
    return "\0".join([*parts, locations.recipe_fingerprint(), " ".join(os.uname())])


def _memo_file(key: str) -> str:
    """Name a memo file after its key, cheaply (zlib, not hashlib: OpenSSL costs milliseconds)."""
    import zlib

    data = key.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def valid_name(name: str) -> bool:
    """Say whether `name` is a plain entry name that cannot escape the collection."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".") and "\0" not in name
