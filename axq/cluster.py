"""Run the points of a sweep on a Ray cluster, each on a node with what it needs, and import them here.

`axq sweep Q , get KEYS --on=ray` (cluster address from RAY_ADDRESS; a local Ray when it is
unset) or `--on=ray://host:port`. Every point is resolved here first (a bad value fails the
sweep before anything runs); points this collection already holds are read here and not
sent. Each other point becomes a Ray task that asks for one CPU, a GPU when the point says
`device=cuda...`, and, when the query or the collection pins `system=...`, the custom
resource `axq_system:<fingerprint>` that only nodes of that machine advertise (`python -m
axq.cluster resources` prints it for `ray start --resources=...`). The node resolves the
point with its own fingerprint and this collection's settings over its own, builds it in its
own work collection (AXQ_NODE_WORK_COLLECTION, else `axq-node-<uid>/work_collection` under its
temp dir), and returns the archive of the entry's closure (less what is here) through Ray's object
store; it is verified and imported here (axq.archive), and the row is read from the imported
entry, as `axq.sweeps.run_point` reads it. The import is remembered, so a rerun reads the
point from here even when the node's fingerprint is not this machine's.

A node that dies mid-point has it retried elsewhere once (Ray's `max_retries=1`, system
failures only), then the point is a failed row with the reason; a failed build is a failed
row with the node's log copied into this collection's `.logs/`. Ctrl-C cancels the remote
tasks (their workers are killed) and returns the rows so far; a rerun resumes. Progress names
the node of each point and ends with the points per node. At most one measurement runs at a
time on a machine: the measurement lock of axq.measure (AXQ_MEASURE_LOCK) is the node's own.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from axq.errors import AxqError, UsageError
from axq.graph import Node
from axq.progress import Reporter
from axq.query import Query, parse
from axq.store import Store, memo_key

Row = dict[str, Any]
SYSTEM_RESOURCE = "axq_system:"  # + fingerprint: a custom resource a node of that machine advertises
NODE_COLLECTION = "AXQ_NODE_WORK_COLLECTION"
FORWARDED = ("AXQ_ENTRIES",)  # driver environment the nodes' workers get (recipe roots: same paths there)
RAY_PIN = "ray==2.60.0"


def address_of(on: str) -> str | None:
    """Return the Ray address `--on` means: `ray` -> RAY_ADDRESS (None: a local Ray), `ray://host:port` -> itself."""
    if on == "ray":
        return os.environ.get("RAY_ADDRESS") or None
    if on.startswith("ray://") and len(on) > len("ray://"):
        return on
    raise UsageError(f"--on={on}: expected `ray` (RAY_ADDRESS, else a local Ray) or `ray://HOST:PORT`")


def node_work_collection() -> str:
    """Return this node's work collection: AXQ_NODE_WORK_COLLECTION, else one under the temp dir."""
    default = os.path.join(tempfile.gettempdir(), f"axq-node-{os.getuid()}", "work_collection")
    return os.environ.get(NODE_COLLECTION) or default


def point_options(node: Node) -> dict[str, Any]:
    """Return the Ray task options a resolved point needs: a CPU, a GPU for cuda, its machine if pinned."""
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": 1, "retry_exceptions": False}
    device = node.params.get("device")
    if isinstance(device, str) and device.startswith("cuda"):
        options["num_gpus"] = 1
    system = node.params.get("system")
    if system is not None and node.sources.get("system") in ("query", "collection"):
        options["resources"] = {SYSTEM_RESOURCE + str(system): 0.001}
    return {**options, "scheduling_strategy": "SPREAD"}


def system_resources(work_collection: str | os.PathLike | None = None) -> dict[str, float]:
    """Return the custom resources this machine advertises: its fingerprint, as the recipes compute `system`."""
    from axq.resolve import Scope

    found = {}
    for recipe in Scope.of(Store(work_collection)).recipes():
        declared = recipe.parameters.get("system")
        if declared is not None and declared.default_from:
            found[SYSTEM_RESOURCE + str(recipe.computed_default("system"))] = 1.0
    return found


# -- on the node -------------------------------------------------------------------------------------


def build_point(point: str, overrides: dict[str, Any] | None, settings: dict[str, Any], have: list[str],
                driver_collection: str) -> dict[str, Any]:
    """Build one point in this node's work collection; return its closure's archive, or why it failed."""
    from axq.build import Builder, log_path_of
    from axq.resolve import Scope, resolve

    store = Store(node_work_collection())
    done: dict[str, Any] = {"node": node_label(), "point": point}
    try:
        scope = Scope({**store.settings(), **settings}, store.recipe_roots())
        entry = Builder(store, Reporter("quiet")).ensure(resolve(point, overrides, scope), point)
    except Exception as error:
        log = log_path_of(error)
        if not isinstance(error, AxqError) and not log:
            raise  # a bug: Ray carries its traceback to the driver
        return {**done, "error": str(error).splitlines()[0].replace(f"; log: {log}", ""),
                "log_name": os.path.basename(log) if log else None, "log_text": _read(log)}
    shared = os.path.realpath(store.root) == os.path.realpath(driver_collection)
    from axq.archive import archive_bytes

    data = b"" if shared else archive_bytes(entry.name, work_collection=store.root, have=set(have))
    return {**done, "entry": entry.name, "archive": data}


def node_label() -> str:
    """Name this node for progress: host and the start of its Ray node id."""
    try:
        import ray

        node_id = ray.get_runtime_context().get_node_id()[:6]
    except Exception:  # not in a Ray worker
        node_id = str(os.getpid())
    return f"{socket.gethostname()}/{node_id}"


def _read(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


# -- on the driver -----------------------------------------------------------------------------------


@dataclass
class Point:
    """One point of the sweep: its query, its resolved node here, its row once known."""

    number: int
    query: Query
    node: Node
    row: Row | None = None
    where: str = "here"


@dataclass
class Driver:
    """What the driver knows while the cluster works: the collection, the points, the reporter."""

    store: Store
    swept: list[str]
    getters: list[str]
    overrides: dict[str, Any] | None
    reporter: Reporter
    on_row: Callable[[Row], None] | None = None
    points: list[Point] = field(default_factory=list)

    def finish(self, point: Point, row: Row, where: str) -> None:
        """Record a point's row, say where it ran, and pass the row on."""
        point.row, point.where = row, where
        done = sum(p.row is not None for p in self.points)
        outcome = row.get("error") or row.get("entry")
        self.reporter.log(f"point {done}/{len(self.points)} ({_label(point.query, self.swept)}) on {where}: {outcome}")
        if self.on_row:
            self.on_row(row)

    def rows(self) -> list[Row]:
        return [p.row for p in self.points if p.row is not None]


def sweep(
    query: str | Query,
    getters: list[str] | str,
    overrides: dict[str, Any] | None = None,
    *,
    address: str | None = None,
    work_collection: str | os.PathLike | None = None,
    reporter: Reporter | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run every point of a sweep on a Ray cluster; return one row per point, as `axq.sweeps.sweep` does."""
    from axq.sweeps import sweep_arguments, swept_keys

    query, getters = sweep_arguments(query, getters)
    driver = Driver(Store(work_collection), swept_keys(query), getters, overrides, reporter or Reporter(), on_row)
    driver.points = resolve_points(query, overrides, driver.store)
    for point in driver.points:
        _read_here(driver, point)
    remote = [p for p in driver.points if p.row is None]
    if remote:
        with _connected(address, driver.reporter):
            run_remote(driver, remote)
    driver.reporter.log("points per node: " + per_node(driver.points))
    return driver.rows()


def resolve_points(query: Query, overrides: dict[str, Any] | None, store: Store) -> list[Point]:
    """Resolve every point here: a bad value anywhere fails the sweep before anything runs."""
    from axq.resolve import Scope, resolve

    scope = Scope.of(store)
    return [Point(number, point, resolve(point, overrides, scope)) for number, point in enumerate(query.expand(), 1)]


def _read_here(driver: Driver, point: Point) -> None:
    """Fill the row of a point this collection holds (built here, or imported by an earlier run)."""
    from axq.build import Builder, stale_reason
    from axq.entry import Entry

    entry = Builder(driver.store, driver.reporter).lookup(point.node)
    if entry is None:
        name = driver.store.memo_lookup(_memo(point, driver.overrides))
        manifest = driver.store.read_manifest(name) if name else None
        if name and manifest and not stale_reason(driver.store, manifest):
            entry = Entry(driver.store, name, manifest)
    if entry is not None:
        driver.finish(point, {**entry_row(point.query, driver.swept, driver.getters, entry), "node": "here"}, "here")


def _memo(point: Point, overrides: dict[str, Any] | None) -> str:
    """Key under which the entry a cluster built for this point is remembered (never a local query's key)."""
    from axq.build import overrides_text

    return memo_key("--on=ray", str(point.query), *overrides_text(overrides))


def entry_row(point: Query, swept: list[str], getters: list[str], entry: Any) -> Row:
    """Read a point's row from its entry, as axq.sweeps.run_point does."""
    from axq.errors import did_you_mean
    from axq.sweeps import bound_values

    known = entry.keys()
    unknown = [key for key in getters if key not in known]
    if unknown:  # the same for every point: stop rather than fill a table with errors
        raise UsageError(f"entry `{entry.name}` has no getter `{unknown[0]}`" + did_you_mean(unknown[0], known))
    row: Row = {k: point.assignments[k] for k in swept}
    row.update({key: entry.get(key) for key in getters})
    row.update(bound_values(entry, getters))
    row.update(valid=entry.invalid_reason is None, error=None, entry=entry.name)
    return row


def failed_row(point: Query, swept: list[str], getters: list[str], error: str, log: str | None) -> Row:
    """Return the row of a point that failed, as axq.sweeps.run_point writes it."""
    row: Row = {k: point.assignments[k] for k in swept}
    row.update({key: None for key in getters})
    row.update(valid=None, error=error, log=log, entry=None)
    return row


class _connected:
    """Connect to Ray for the sweep (unless already connected), and disconnect after."""

    def __init__(self, address: str | None, reporter: Reporter) -> None:
        self.address, self.reporter, self.ours = address, reporter, False

    def __enter__(self) -> None:
        ray = import_ray()
        if ray.is_initialized():
            return
        env = {k: os.environ[k] for k in FORWARDED if k in os.environ}
        self.reporter.log(f"connecting to Ray at {self.address}" if self.address else "starting a local Ray")
        import logging

        ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": env} if env else None)
        self.ours = True

    def __exit__(self, *exc: object) -> None:
        if self.ours:
            import_ray().shutdown()


def import_ray() -> Any:
    """Import Ray, or say in one line how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--on=ray needs Ray: pip install '{RAY_PIN}'") from None
    return ray


def run_remote(driver: Driver, points: list[Point]) -> None:
    """Send each point to the cluster, then import each result as it comes; Ctrl-C cancels the rest."""
    from axq.errors import Interrupted
    from axq.sweeps import SweepInterrupted

    ray = import_ray()
    task = ray.remote(build_point)
    settings = driver.store.settings()
    pending = {task.options(**point_options(p.node)).remote(
        str(p.query), driver.overrides, settings, have(driver.store, p.node), driver.store.root): p for p in points}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            point = pending.pop(ready[0])
            _take(driver, point, ready[0])
    except (KeyboardInterrupt, Interrupted):
        # Cancel only what is still running: force-cancelling a task that has just finished
        # trips a check inside Ray 2.60's driver ("Tried to complete task that was not pending").
        _, running = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in running:
            ray.cancel(ref, force=True)
        raise SweepInterrupted(driver.rows()) from None


def have(store: Store, node: Node) -> list[str]:
    """Return the identities of a point's graph that this collection holds (the node need not send them)."""
    found, todo = set(), [node]
    while todo:
        current = todo.pop()
        if store.name_for_identity(current.identity, current.name):
            found.add(current.identity)
        todo.extend(current.deps.values())
    return sorted(found)


def _take(driver: Driver, point: Point, ref: Any) -> None:
    """Turn one finished task into the point's row: import its archive, or record why it failed."""
    ray = import_ray()
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        raise error.as_instanceof_cause() from None  # a bug on the node: its traceback
    except ray.exceptions.RayError as error:  # the node died twice, or the task could not run
        reason = f"lost on the cluster after a retry: {str(error).strip().splitlines()[0]}"
        driver.finish(point, failed_row(point.query, driver.swept, driver.getters, reason, None), "(lost)")
        return
    if result.get("error"):
        log = _keep_log(driver.store, result)
        row = failed_row(point.query, driver.swept, driver.getters, f"{result['error']} (on {result['node']})", log)
    else:
        row = _import(driver, point, result)
    driver.finish(point, {**row, "node": result["node"]}, result["node"])


def _import(driver: Driver, point: Point, result: dict[str, Any]) -> Row:
    """Import a point's archive, remember it for reruns, and read its row from the imported entry."""
    from axq.archive import import_archive
    from axq.entry import Entry

    if result["archive"]:
        import_archive(result["archive"], work_collection=driver.store.root)
    with driver.store.writing():
        driver.store.memo_record(_memo(point, driver.overrides), result["entry"])
    return entry_row(point.query, driver.swept, driver.getters, Entry.load(driver.store, result["entry"]))


def _keep_log(store: Store, result: dict[str, Any]) -> str | None:
    """Copy a failed point's build log from the node into this collection's `.logs/`; return where."""
    if not result.get("log_text") or not result.get("log_name"):
        return None
    path = store.path(".logs", str(result["log_name"]))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"# built on {result['node']}\n{result['log_text']}")
    return path


def per_node(points: list[Point]) -> str:
    """Say how many points each node ran: `host/1a2b3c 2, host/4d5e6f 2, here 0`."""
    counts: dict[str, int] = {}
    for point in points:
        counts[point.where] = counts.get(point.where, 0) + 1
    return ", ".join(f"{where} {n}" for where, n in sorted(counts.items()))


def _label(point: Query, swept: list[str]) -> str:
    return ",".join(str(c) for c in point.conditions if c.key in swept)


# -- explorations -------------------------------------------------------------------------------------


def score_configuration(configuration: Any, swept: list[str], target: float | None, have: list[str],
                        driver_collection: str) -> dict[str, Any]:
    """Score one configuration in this node's work collection; return its row and its runs' closures."""
    from axq.archive import archive_bytes
    from axq.exploration import score

    store = Store(node_work_collection())
    row = score(configuration, swept, target, store.root, Reporter("quiet"))
    names = [row[k] for k in RUN_COLUMNS if row.get(k)]
    shared = os.path.realpath(store.root) == os.path.realpath(driver_collection)
    archives = [] if shared else [archive_bytes(n, work_collection=store.root, have=set(have)) for n in names]
    log = row.get("log")
    return {"node": node_label(), "row": row, "archives": archives, "log_name": os.path.basename(log) if log else None,
            "log_text": _read(log)}


RUN_COLUMNS = ("accuracy_entry", "performance_entry", "reference_entry")


def explore(
    query: str | Query,
    overrides: dict[str, Any] | None = None,
    *,
    target: float | None = None,
    address: str | None = None,
    work_collection: str | os.PathLike | None = None,
    reporter: Reporter | None = None,
) -> list[Row]:
    """Score every configuration of a grid on a Ray cluster; return the rows as `axq.exploration.explore` does.

    A configuration whose runs this collection holds (or one the recipes refuse) is scored
    here; each other one is scored on a node, in its work collection, and its runs imported.
    """
    from axq.exploration import configurations, mark
    from axq.sweeps import swept_keys

    query = parse(query) if isinstance(query, str) else query
    if not query.is_sweep:
        raise UsageError(f"`{query}` sweeps nothing: use `k:=a:b:c` for at least one parameter")
    store, reporter = Store(work_collection), reporter or Reporter()
    swept, grid = swept_keys(query), configurations(query, overrides, work_collection)
    rows: list[Row | None] = [_score_here(c, swept, target, store, reporter) for c in grid]
    remote = [i for i, row in enumerate(rows) if row is None]
    if remote:
        with _connected(address, reporter):
            _explore_remote(grid, remote, rows, swept, target, store, reporter)
    return mark([row for row in rows if row is not None])


def _score_here(configuration: Any, swept: list[str], target: float | None, store: Store,
                reporter: Reporter) -> Row | None:
    """Score a configuration here if that builds nothing (refused, or every run cached); else None."""
    from axq.build import Builder
    from axq.exploration import score
    from axq.resolve import Scope, resolve

    runs = [configuration.accuracy, configuration.performance, configuration.reference]
    scope = Scope.of(store)
    if configuration.skipped or all(Builder(store, reporter).lookup(resolve(q, None, scope)) for q in runs if q):
        return {**score(configuration, swept, target, store.root, reporter), "node": "here"}
    return None


def _explore_remote(grid: list[Any], remote: list[int], rows: list[Row | None], swept: list[str],
                    target: float | None, store: Store, reporter: Reporter) -> None:
    """Score the configurations at `remote` on the cluster, importing each as it comes; Ctrl-C cancels the rest."""
    from axq.archive import import_archive
    from axq.errors import Interrupted
    from axq.exploration import mark
    from axq.resolve import Scope, resolve
    from axq.sweeps import SweepInterrupted

    ray, scope = import_ray(), Scope.of(store)
    task = ray.remote(score_configuration)
    pending = {}
    for index in remote:
        node = resolve(grid[index].performance, None, scope)
        pending[task.options(**point_options(node)).remote(
            grid[index], swept, target, have(store, node), store.root)] = index
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            row = rows[index] = _explored(ready[0], grid[index], swept, store, import_archive)
            reporter.log(f"explore configuration ({_label(grid[index].point, swept)}) on {row['node']}: "
                         f"{row.get('error') or 'scored'}")
    except (KeyboardInterrupt, Interrupted):
        for ref in pending:
            ray.cancel(ref, force=True)
        raise SweepInterrupted(mark([row for row in rows if row is not None])) from None


def _explored(ref: Any, configuration: Any, swept: list[str], store: Store, importer: Callable) -> Row:
    """Turn one finished scoring task into its row: import the runs, copy a failure's log here."""
    ray = import_ray()
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        raise error.as_instanceof_cause() from None
    except ray.exceptions.RayError as error:
        from axq.exploration import _empty  # the columns of a row before anything is known

        reason = f"lost on the cluster after a retry: {str(error).strip().splitlines()[0]}"
        row: Row = {k: configuration.point.assignments[k] for k in swept}
        return {**row, **_empty(), "error": reason, "node": "(lost)"}
    for data in result["archives"]:
        importer(data, work_collection=store.root)
    log = _keep_log(store, result) if result["row"].get("log") else None
    return {**result["row"], "log": log, "node": result["node"]}


def main(argv: list[str]) -> int:
    """`python -m axq.cluster resources`: print this machine's custom resources for `ray start --resources`."""
    if argv != ["resources"]:
        print("usage: python -m axq.cluster resources", file=sys.stderr)
        return 2
    print(json.dumps(system_resources()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
