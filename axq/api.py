"""Do what the CLI does, from Python: `axq.byquery("...").get("accuracy")`.

Every function takes an optional `work_collection` (else AXQ_WORK_COLLECTION, else the
default) and raises `axq.errors.AxqError` subclasses for user errors.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

from axq.archive import ImportReport, export_archive, import_archive
from axq.build import NO_CODE_RECORD, Builder, shown_changes, stale_reason, superseded_reason
from axq.entry import Entry
from axq.errors import DependentsError, EntryNotFound
from axq.exploration import explore
from axq.graph import Node
from axq.parameters import Parameter
from axq.progress import Reporter, duration
from axq.query import Query, format_value, parse
from axq.resolve import Match, Scope, check_rule, choose, resolve, with_overrides
from axq.resolve import rules as match_rules
from axq.store import COLLECTIONS, SETTINGS, Store, valid_name
from axq.sweeps import sweep

__all__ = ["ImportReport", "Plan", "Step", "byname", "byquery", "explore", "export_archive", "gc", "import_archive",
           "list_entries", "params", "plan", "reindex", "remove", "rules", "set_settings", "settings",
           "stale_reasons", "superseded_reasons", "sweep", "unset_settings", "where", "wipe"]


def byquery(
    query: str | Query,
    overrides: dict[str, Any] | None = None,
    *,
    work_collection: str | os.PathLike | None = None,
    reporter: Reporter | None = None,
    memo: str | None = None,
) -> Entry:
    """Return the entry a query means, building it and its dependencies if missing."""
    return Builder(Store(work_collection), reporter).byquery(query, overrides, memo)


def byname(name: str, *, work_collection: str | os.PathLike | None = None) -> Entry:
    """Return the entry called `name`."""
    return Entry.load(Store(work_collection), name)


def rules(query: str | Query, *, work_collection: str | os.PathLike | None = None) -> list[Match]:
    """Return how every producer rule fares against a query (with the collection's settings), matches first."""
    return match_rules(query, Scope.of(Store(work_collection)))


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of the rule a query chooses: its value, where it came from, its declaration."""

    name: str
    type: str
    value: Any
    source: str  # "default", "rule" (the rule's own default), "collection" (axq set), "query", "fixed"
    default: Any
    choices: tuple[Any, ...] | None
    minimum: float | None
    maximum: float | None
    description: str
    required: bool


def params(
    query: str | Query,
    overrides: dict[str, Any] | None = None,
    *,
    work_collection: str | os.PathLike | None = None,
) -> list[ParamInfo]:
    """List the parameters of the rule a query chooses, with values (checked) and declarations."""
    parsed = parse(query) if isinstance(query, str) else query
    parsed = with_overrides(parsed, overrides) if overrides else parsed
    chosen = choose(parsed, Scope.of(Store(work_collection)))
    producer, values, sources = chosen.producer, chosen.params or {}, chosen.sources or {}
    check_rule(producer, values)
    return [_param_info(producer, name, values.get(name), sources.get(name, "required"))
            for name in sorted(producer.accepted)]


def _param_info(producer: Any, name: str, value: Any, source: str) -> ParamInfo:
    """Describe one parameter of a rule."""
    declared: Parameter | None = producer.declared(name)
    return ParamInfo(name, declared.type if declared else type(value).__name__, value, source,
                     _shown_default(declared),
                     declared.choices if declared else None, declared.minimum if declared else None,
                     declared.maximum if declared else None,
                     declared.description if declared else "fixed by the rule",
                     name in producer.required)


def _shown_default(declared: Parameter | None) -> Any:
    """Return a declared default as `axq params` shows it (a computed one by its function)."""
    if declared is None or not declared.has_default:
        return None
    return f"<computed by {declared.default_from}>" if declared.default_from else declared.default


@dataclass(frozen=True)
class Step:
    """One node of a plan: cached or to build, and why."""

    node: Node
    cached: bool
    reason: str
    depth: int
    estimate_s: float | None = None  # expected build time: as recorded here (see Durations), else the recipe's
    stale: str | None = None  # why the entry there is not reused, if one is there
    estimate_basis: str | None = None  # where estimate_s came from: `N builds here` or `the recipe`

    def __repr__(self) -> str:
        return f"Step(cached {self.node.name})" if self.cached else f"Step(build {self.node.name}: {self.reason})"

    def line(self) -> str:
        """Say the step as `axq plan` prints it: `[build ] name  (not built yet; about 12 s, from 3 builds here)`."""
        indent = "  " * self.depth
        if self.cached:
            return f"{indent}[cached] {self.node.name}"
        notes = [self.reason]
        if self.stale and self.stale not in self.reason:
            notes.append(f"stale: {self.stale}")
        if self.estimate_s is not None:
            basis = f", from {self.estimate_basis}" if self.estimate_basis else ""
            notes.append("about " + duration(self.estimate_s) + basis)
        return f"{indent}[build ] {self.node.name}  ({'; '.join(notes)})"


class Plan(list[Step]):
    """The steps of a plan, dependencies after what needs them; shown as `axq plan` prints it."""

    def __repr__(self) -> str:
        return "\n".join([*(step.line() for step in self), self.summary()])

    def summary(self) -> str:
        """Sum the plan up: `13 to build (12 loadgen_program, 1 mlperf_submission), about 2 h 10 min; 3 cached`."""
        todo = [s for s in self if not s.cached]
        cached = len(self) - len(todo)
        if not todo:
            return f"nothing to build; {cached} cached"
        counts: dict[str, int] = {}
        for step in todo:
            counts[step.node.producer.recipe.name] = counts.get(step.node.producer.recipe.name, 0) + 1
        groups = ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        known = [s.estimate_s for s in todo if s.estimate_s is not None]
        some_unknown = " (some unknown)" if len(known) < len(todo) else ""
        total = f", about {duration(sum(known))}{some_unknown}" if known else ""
        return f"{len(todo)} to build ({groups}){total}; {cached} cached"


def plan(
    query: str | Query,
    overrides: dict[str, Any] | None = None,
    *,
    work_collection: str | os.PathLike | None = None,
) -> Plan:
    """Say what a query needs: what is cached, what would be built and why (a dry run).

    Each entry appears once, where it is first needed: a run that several others depend on
    (a compliance test's reference runs, which its submission holds too) is one step. An
    entry whose code (or a dependency's) changed since an entry of the same query was built
    is `stale: recipe (entries/recipe/file.py changed)`.
    """
    store = Store(work_collection)
    planning = _Planning(store, Durations(store))
    planning.add(resolve(query, overrides, Scope.of(planning.store)), 0)
    return planning.steps


class Durations:
    """Expected build times from what this machine recorded: the median duration of like builds.

    Like builds are entries of the same recipe and tags, built on this host, whose key
    parameters (the recipe's `name_params`, those its entries are named by: data set,
    scenario, mode, framework, ...) are the node's. Where there are none, the recipe's
    estimate hook answers (Node.estimate_s). The collection is read once, when first asked.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.recorded: dict[tuple[str, tuple[str, ...]], list[tuple[dict, float]]] | None = None

    def estimate(self, node: Node) -> tuple[float | None, str | None]:
        """Return the node's expected seconds and where they came from (None, None if unknown)."""
        import statistics

        names = node.producer.recipe.name_params
        like = [seconds for params, seconds in self._index().get((node.producer.recipe.name, node.producer.tags), [])
                if all(params.get(name) == node.params.get(name) for name in names)]
        if like:
            return statistics.median(like), f"{len(like)} build{'s' if len(like) > 1 else ''} here"
        estimate = node.estimate_s
        return estimate, None if estimate is None else "the recipe"

    def _index(self) -> dict[tuple[str, tuple[str, ...]], list[tuple[dict, float]]]:
        """Return {(recipe, tags): [(params, recorded seconds)]} of the entries built on this host."""
        if self.recorded is None:
            import socket

            host, self.recorded = socket.gethostname(), {}
            for _, manifest in self.store.manifests():
                provenance = manifest.get("provenance") or {}
                seconds = provenance.get("duration_s")
                if provenance.get("host") == host and isinstance(seconds, (int, float)):
                    key = (manifest.get("recipe", ""), tuple(manifest.get("tags", ())))
                    self.recorded.setdefault(key, []).append((manifest.get("params", {}), float(seconds)))
        return self.recorded


@dataclass
class _Planning:
    """A plan being made: its steps, what each identity came to, and the built entries to compare with."""

    store: Store
    durations: Durations
    steps: Plan = field(default_factory=lambda: Plan())
    seen: dict[str, bool] = field(default_factory=dict)  # identity -> cached
    causes: dict[str, list[str]] = field(default_factory=dict)  # identity -> code changes that make it new
    _built: dict[tuple[str, tuple[str, ...]], list[dict]] | None = None

    def add(self, node: Node, depth: int) -> bool:
        """Append the steps for node and its dependencies (each identity once); return whether it is cached."""
        if node.identity in self.seen:
            return self.seen[node.identity]
        index = len(self.steps)
        deps_cached = [self.add(dep, depth + 1) for dep in node.deps.values()]
        name = self.store.name_for_identity(node.identity, node.name)
        stale = stale_reason(self.store, self.store.read_manifest(name) or {}) if name else None
        cached = name is not None and stale is None
        if cached:
            reason = "cached"
        elif stale:
            reason = f"stale: {stale}"
        else:
            reason, stale = self._why(node, all(deps_cached))
        estimate, basis = (None, None) if cached else self.durations.estimate(node)
        self.steps.insert(index, Step(node, cached, reason, depth, estimate, stale, basis))
        self.seen[node.identity] = cached
        return cached

    def siblings(self, node: Node) -> list[dict]:
        """Return the built entries of the node's recipe and tags (the collection is read once a plan)."""
        if self._built is None:
            self._built = {}
            for _, manifest in self.store.manifests():
                kind = (str(manifest.get("recipe")), tuple(manifest.get("tags", ())))
                self._built.setdefault(kind, []).append(manifest)
        return self._built.get((node.producer.recipe.name, node.producer.tags), [])

    def _why(self, node: Node, deps_cached: bool) -> tuple[str, str | None]:
        """Explain why a node is not cached, against the closest entry of its recipe; and why that is stale."""
        siblings = self.siblings(node)
        if not siblings:
            return "not built yet", None
        compared = [(m, *self._differences(node, m)) for m in siblings]
        closest, plain, changed = min(compared, key=lambda c: (len(c[1]), len(c[2])))
        if not plain and changed:  # the same inputs, other code: a newer build of that entry
            self.causes[node.identity] = changed
            stale = f"{node.producer.recipe.name} ({shown_changes(changed)})"
            return f"stale: {stale}", stale
        if not plain and not deps_cached:
            return "a dependency will be built", None
        return "differs from " + closest["name"] + ": " + "; ".join([*plain, *changed][:4]), None

    def _differences(self, node: Node, manifest: dict) -> tuple[list[str], list[str]]:
        """List how a node differs from a built entry: (version, parameters, dependencies), (code changes)."""
        plain: list[str] = []
        changed: list[str] = []
        if manifest.get("recipe_version") != node.producer.recipe.version:
            plain.append(f"recipe version {manifest.get('recipe_version')} -> {node.producer.recipe.version}")
        for key in sorted(set(node.params) | set(manifest["params"])):
            old, new = manifest["params"].get(key, "<unset>"), node.params.get(key, "<unset>")
            if old != new or type(old) is not type(new):
                plain.append(f"{key}: {_show(old)} -> {_show(new)}")
        if not isinstance(manifest.get("code"), dict):
            return plain, [NO_CODE_RECORD]  # its dependencies were built so too: that says it all
        changed.extend(node.code.changes(manifest["code"]))
        for key, dep in node.deps.items():
            if manifest["deps"].get(key, {}).get("identity") != dep.identity:
                cause = self.causes.get(dep.identity)
                if cause:
                    changed.extend(cause)  # its code changed: say which files
                else:
                    plain.append(f"dependency `{key}` differs")
        return plain, list(dict.fromkeys(changed))


def _show(value: Any) -> str:
    return value if value == "<unset>" else format_value(value)


def stale_reasons(entries: list[Entry], *, work_collection: str | os.PathLike | None = None) -> dict[str, str]:
    """Map each stale entry's name to why (its recipe, or an input, changed since it was built)."""
    store = Store(work_collection)
    seen: dict[str, str | None] = {}
    found = {e.name: stale_reason(store, e.manifest, seen) for e in entries}
    return {name: reason for name, reason in found.items() if reason}


def superseded_reasons(entries: list[Entry], *, work_collection: str | os.PathLike | None = None) -> dict[str, str]:
    """Map each superseded entry's name to why: its recipe's version or code (or a dependency's) changed since.

    A superseded entry is kept (it is a true record of the old code; `gc` leaves it); the
    same query now means a new entry.
    """
    store = Store(work_collection)
    seen: dict[str, str | None] = {}
    found = {e.name: superseded_reason(store, e.manifest, seen) for e in entries}
    return {name: reason for name, reason in found.items() if reason}


def list_entries(query: str | Query = "", *, work_collection: str | os.PathLike | None = None) -> list[Entry]:
    """Return the built entries that satisfy a query (tags, parameters or results)."""
    store = Store(work_collection)
    parsed = parse(query) if isinstance(query, str) else query
    found = []
    for name, manifest in store.manifests():
        values = {**(manifest.get("results") or {}), **manifest.get("params", {})}
        if all(q.test(manifest.get("tags", ()), values) for q in parsed.expand()):
            found.append(Entry(store, name, manifest))
    return found


def dependents(store: Store, names: set[str]) -> dict[str, list[str]]:
    """Map each entry that depends on one of `names` to those it depends on."""
    found: dict[str, list[str]] = {}
    for name, manifest in store.manifests():
        needed = [d["name"] for d in manifest.get("deps", {}).values()] + list(manifest.get("used", {}))
        used = [n for n in needed if n in names]
        if used and name not in names:
            found[name] = used
    return found


def _targets(store: Store, target: str) -> set[str]:
    """Return the entry names a removal target means: a name, or a query's matches."""
    if valid_name(target) and store.entry_dir(target):
        return {target}
    entries = list_entries(target, work_collection=store.root)
    if not entries:
        raise EntryNotFound(f"nothing matches `{target}` in {store.root}")
    return {e.name for e in entries}


def remove(target: str, *, force: bool = False, work_collection: str | os.PathLike | None = None) -> list[str]:
    """Remove entries by name or query; with force, also what depends on them."""
    store = Store(work_collection)
    names = _targets(store, target)
    while users := dependents(store, names):
        if not force:
            listing = ", ".join(sorted(users)[:5])
            raise DependentsError(f"{len(users)} entries depend on what you asked to remove ({listing}); "
                                  "add --force to remove them too")
        names |= set(users)
    for name in sorted(names):
        _remove_one(store, name)
    return sorted(names)


def _remove_one(store: Store, name: str) -> None:
    """Hide an entry by one rename (so nothing sees it half-removed), then delete it."""
    manifest = store.read_manifest(name) or {}
    os.makedirs(store.path(".tmp"), exist_ok=True)
    doomed = store.path(".tmp", f"{name}.{os.getpid()}.removing")
    os.rename(store.path(name), doomed)
    if "identity" in manifest:
        store.forget(manifest["identity"])
    store.drop_recipe_root(name)
    shutil.rmtree(doomed, ignore_errors=True)


def gc(*, work_collection: str | os.PathLike | None = None) -> dict[str, int]:
    """Remove leftovers of failed or killed builds and rebuild the index."""
    import fcntl

    store = Store(work_collection)
    removed = 0
    for leftover in _listdir(store.path(".tmp")):
        lock = store.path(".locks", leftover.split(".", 1)[0] + ".lock")
        if leftover.endswith(".removing") or not _locked(lock, fcntl):
            shutil.rmtree(store.path(".tmp", leftover), ignore_errors=True)
            removed += 1
    return {"leftovers_removed": removed, "entries_indexed": store.reindex()}


def _locked(path: str, fcntl: Any) -> bool:
    """Say whether a lock file is held by a live process."""
    try:
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
    except BlockingIOError:
        return True


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def reindex(*, work_collection: str | os.PathLike | None = None) -> int:
    """Rebuild the index from the entry directories; return the number of entries."""
    return Store(work_collection).reindex()


def wipe(*, work_collection: str | os.PathLike | None = None) -> int:
    """Remove every entry of the work collection (keeping its README); return how many."""
    store = Store(work_collection)
    names = store.names()
    hidden = (".index", ".tmp", ".locks", ".logs", ".cache")
    for name in [*names, *(h for h in hidden if os.path.exists(store.path(h)))]:
        shutil.rmtree(store.path(name), ignore_errors=True)
    for name in (SETTINGS, COLLECTIONS):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(store.path(name))
    return len(names)


def settings(*, work_collection: str | os.PathLike | None = None) -> dict[str, Any]:
    """Return the collection settings: parameter defaults kept in the work collection."""
    return Store(work_collection).settings()


def set_settings(values: dict[str, Any], *, work_collection: str | os.PathLike | None = None) -> dict[str, Any]:
    """Set collection settings (`axq set k=v`); return them all.

    A setting fills parameter `k` of every rule that takes it, below a query's own `k=v`,
    and so enters those entries' identities. Values are checked against the declarations of
    the recipes that take the parameter; a name no recipe takes is refused with a did-you-mean.
    """
    from axq.errors import UsageError, did_you_mean
    from axq.recipe import all_recipes

    recipes = all_recipes(Store(work_collection).recipe_roots())
    known = {name: p for r in recipes for name, p in [*r.parameters.items(), *(
        (alias, r.parameters[target]) for alias, target in r.aliases.items())]}
    for key, value in values.items():
        if key not in known:
            raise UsageError(f"no recipe takes a parameter `{key}`" + did_you_mean(key, known))
        known[key].check(value)
    store = Store(work_collection)
    with store.writing():
        store.write_settings({**store.settings(), **values})
    return store.settings()


def unset_settings(keys: list[str], *, work_collection: str | os.PathLike | None = None) -> dict[str, Any]:
    """Remove collection settings; return those left."""
    from axq.errors import UsageError, did_you_mean

    store = Store(work_collection)
    current = store.settings()
    for key in keys:
        if key not in current:
            raise UsageError(f"`{key}` is not set" + did_you_mean(key, current))
    with store.writing():
        store.write_settings({k: v for k, v in current.items() if k not in keys})
    return store.settings()


def where(*, work_collection: str | os.PathLike | None = None) -> str:
    """Return the work collection's path."""
    return Store(work_collection).root
