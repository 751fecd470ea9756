"""Run the jobs of a sweep or an exploration on a Ray cluster, each on a node with what it needs; import them here.

`Ray` is the second executor of axq/executor.py: `axq sweep Q , get KEYS --on=ray` (cluster
address from RAY_ADDRESS; a local Ray when it is unset) or `--on=ray://host:port`, and the
same for `axq explore`. Every point is resolved here first (a bad value fails the sweep
before anything runs); jobs whose entries this collection already holds are read here and
not sent. Each other job becomes a Ray task that asks for one CPU, what its recipe's
`"resources"` hook asks for (loadgen_program: a GPU for `device=cuda...`), and, when the
query or the collection pins a parameter computed from the machine (`system=...`), the
custom resource `axq_system:<fingerprint>` that only nodes of that machine advertise
(`python -m axq.cluster resources` prints them for `ray start --resources=...`). The node runs the job
(`Job.run`) with its own fingerprint and this collection's settings over its own, in its own
work collection (AXQ_NODE_WORK_COLLECTION, else `axq-node-<uid>/work_collection` under its
temp dir), and returns the row and the archives of the entries it reads (less what is here)
through Ray's object store; they are verified and imported here (axq.archive). A sweep's
point remembers its import (`Job.imported`), so a rerun reads it from here even when the
node's fingerprint is not this machine's.

A node that dies mid-job has it retried elsewhere once (Ray's `max_retries=1`, system
failures only), then the job is a failed row with the reason; a failed build is a failed
row with the node's log copied into this collection's `.logs/`. Ctrl-C cancels the remote
tasks (their workers are killed) and keeps the rows so far; a rerun resumes. Progress names
the node of each job and ends with the jobs per node. At most one measurement runs at a
time on a machine: the measurement lock of axq.measure (AXQ_MEASURE_LOCK) is the node's own.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from axq.errors import Interrupted, UsageError
from axq.executor import Job, Row, SweepInterrupted
from axq.graph import Node
from axq.progress import Reporter
from axq.store import Store

NODE_COLLECTION = "AXQ_NODE_WORK_COLLECTION"
FORWARDED = ("AXQ_ENTRIES",)  # driver environment the nodes' workers get (recipe roots: same paths there)
RAY_PIN = "ray==2.60.0"
BASE_OPTIONS = {"num_cpus": 1, "max_retries": 1, "retry_exceptions": False, "scheduling_strategy": "SPREAD"}


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
    """Return the Ray task options a resolved point needs: a CPU, what its recipe asks for, its machine if pinned.

    The recipe says what a point needs of a node with its `"resources"` hook (`resources(params)
    -> {"num_gpus": 1}`, Ray's task options); the kernel knows no device names. A parameter
    whose default is computed from the machine (`default_from`, such as `system`) and that the
    query or the collection pins asks for a node that computes that value.
    """
    options: dict[str, Any] = dict(BASE_OPTIONS)
    hook = node.producer.hook("resources")
    if hook is not None:
        options.update(hook(dict(node.params)))
    pinned = {machine_resource(name, node.params[name]): 0.001 for name in machine_params(node.producer.recipe)
              if node.params.get(name) is not None and node.sources.get(name) in ("query", "collection")}
    if pinned:
        options["resources"] = {**options.get("resources", {}), **pinned}
    return options


def machine_params(recipe: Any) -> list[str]:
    """Return the parameters whose default a recipe computes from the machine it runs on."""
    return [name for name, declared in recipe.parameters.items() if declared.default_from]


def machine_resource(name: str, value: Any) -> str:
    """Name the custom resource of a node whose machine computes `value` for parameter `name`: `axq_system:...`."""
    return f"axq_{name}:{value}"


def system_resources(work_collection: str | os.PathLike | None = None) -> dict[str, float]:
    """Return the custom resources this machine advertises: what the recipes compute from it (`system`, ...)."""
    from axq.resolve import Scope

    found = {}
    for recipe in Scope.of(Store(work_collection)).recipes():
        for name in machine_params(recipe):
            found[machine_resource(name, recipe.computed_default(name))] = 1.0
    return found


# -- on the node -------------------------------------------------------------------------------------


def run_on_node(job: Job, settings: dict[str, Any], have: list[str], driver_collection: str) -> dict[str, Any]:
    """Run one job in this node's work collection; return its row, its entries' closures and a failure's log."""
    from axq.archive import archive_bytes
    from axq.resolve import Scope

    store = Store(node_work_collection())
    scope = Scope({**store.settings(), **settings}, store.recipe_roots())
    row = job.run(store, Reporter("quiet"), scope)
    shared = os.path.realpath(store.root) == os.path.realpath(driver_collection)
    archives = [] if shared else [archive_bytes(n, work_collection=store.root, have=set(have))
                                  for n in job.entries(row)]
    log = row.get("log")
    return {"node": node_label(), "row": row, "archives": archives,
            "log_name": os.path.basename(log) if log else None, "log_text": _read(log)}


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
class Progress:
    """What the driver knows while the cluster works: the rows so far, where each job ran."""

    jobs: Sequence[Job]
    reporter: Reporter
    on_row: Callable[[Row], None] | None = None
    rows: list[Row | None] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows, self.where = [None] * len(self.jobs), ["-"] * len(self.jobs)

    def finish(self, index: int, row: Row, where: str) -> None:
        """Record a job's row, say where it ran, and pass the row on."""
        row = {**row, "node": where}
        self.rows[index], self.where[index] = row, where
        done = sum(r is not None for r in self.rows)
        outcome = row.get("error") or row.get("entry") or "done"
        self.reporter.log(f"point {done}/{len(self.jobs)} ({self.jobs[index].label}) on {where}: {outcome}")
        if self.on_row:
            self.on_row(row)

    def finished(self) -> list[Row]:
        return [r for r in self.rows if r is not None]


class Ray:
    """Run jobs on a Ray cluster (axq.executor's other executor): what is here is read here, the rest sent."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def run(self, jobs: Sequence[Job], store: Store, reporter: Reporter, kind: str = "sweep",
            on_row: Callable[[Row], None] | None = None) -> list[Row]:
        """Read the jobs this collection holds, run the others on the cluster; return the rows in order."""
        progress = Progress(jobs, reporter, on_row)
        for index, job in enumerate(jobs):
            row = job.cached(store, reporter)
            if row is not None:
                progress.finish(index, row, "here")
        remote = [i for i, row in enumerate(progress.rows) if row is None]
        if remote:
            with _connected(self.address, reporter):
                run_remote(progress, remote, store, kind)
        reporter.log("points per node: " + per_node(progress.where))
        return progress.finished()


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


def run_remote(progress: Progress, remote: list[int], store: Store, kind: str) -> None:
    """Send each job at `remote` to the cluster, then import each result as it comes; Ctrl-C cancels the rest."""
    ray = import_ray()
    task, settings = ray.remote(run_on_node), store.settings()
    pending = {}
    for index in remote:
        node = progress.jobs[index].node(store)
        options = point_options(node) if node is not None else dict(BASE_OPTIONS)
        needed = have(store, node) if node is not None else []
        pending[task.options(**options).remote(progress.jobs[index], settings, needed, store.root)] = index
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            _take(progress, index, ready[0], store)
    except (KeyboardInterrupt, Interrupted):
        # Cancel only what is still running: force-cancelling a task that has just finished
        # trips a check inside Ray 2.60's driver ("Tried to complete task that was not pending").
        _, running = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for ref in running:
            ray.cancel(ref, force=True)
        raise SweepInterrupted(progress.finished(), kind) from None


def have(store: Store, node: Node) -> list[str]:
    """Return the identities of a point's graph that this collection holds (the node need not send them)."""
    found, todo = set(), [node]
    while todo:
        current = todo.pop()
        if store.name_for_identity(current.identity, current.name):
            found.add(current.identity)
        todo.extend(current.deps.values())
    return sorted(found)


def _take(progress: Progress, index: int, ref: Any, store: Store) -> None:
    """Turn one finished task into the job's row: import its entries, copy a failure's log here."""
    from axq.archive import import_archive

    ray, job = import_ray(), progress.jobs[index]
    try:
        result = ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        raise error.as_instanceof_cause() from None  # a bug on the node: its traceback
    except ray.exceptions.RayError as error:  # the node died twice, or the task could not run
        reason = f"lost on the cluster after a retry: {str(error).strip().splitlines()[0]}"
        progress.finish(index, job.failed(reason), "(lost)")
        return
    for data in result["archives"]:
        import_archive(data, work_collection=store.root)
    row = dict(result["row"])
    if row.get("log"):
        row["log"] = _keep_log(store, result)
    if row.get("error") and row.get("valid") is None:
        row["error"] = f"{row['error']} (on {result['node']})"
    progress.finish(index, job.imported(store, row), result["node"])


def _keep_log(store: Store, result: dict[str, Any]) -> str | None:
    """Copy a failed job's build log from the node into this collection's `.logs/`; return where."""
    if not result.get("log_text") or not result.get("log_name"):
        return None
    path = store.path(".logs", str(result["log_name"]))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"# built on {result['node']}\n{result['log_text']}")
    return path


def per_node(where: list[str]) -> str:
    """Say how many jobs each node ran: `host/1a2b3c 2, host/4d5e6f 2, here 0`."""
    counts: dict[str, int] = {}
    for name in where:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def main(argv: list[str]) -> int:
    """`python -m axq.cluster resources`: print this machine's custom resources for `ray start --resources`."""
    if argv != ["resources"]:
        print("usage: python -m axq.cluster resources", file=sys.stderr)
        return 2
    print(json.dumps(system_resources()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
