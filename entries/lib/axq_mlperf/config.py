"""The typed configuration between a LoadGen recipe's build and its child process.

The build writes it as `config.json` in the entry directory; the child (`harness.py`) reads
it back. Dependencies travel as entry directories: the child opens them with
`axq.entry.Entry.at(path)` and calls their recipe code (`entry.call("load_model", ...)`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from axq_mlperf.backends import Options

FILE = "config.json"


@dataclass(frozen=True)
class HarnessConfig:
    """What one LoadGen test in the child needs: the test, the SUT's settings, its two inputs.

    A field named like a loadgen_program parameter holds that parameter's value: the
    parameters declared `"to": "harness"` in its recipe.json are fields here, those declared
    `"to": "backend"` are fields of `backend` (axq_mlperf.backends.Options), and `of` copies
    them from the run's parameters. A default here is the declared one
    (tests/test_harness_config.py checks names, types and defaults against recipe.json).
    """

    SET_BY_CODE: ClassVar[frozenset[str]] = frozenset({"user_conf", "calibrate", "buffer_size", "min_queries",
                                                       "preprocessed", "model", "backend", "timings"})
    # what a run's speed does not depend on: left out of timing_key
    UNTIMED: ClassVar[frozenset[str]] = frozenset({"user_conf", "calibrate", "buffer_size", "min_queries",
                                                   "loadgen_mode", "harness_baseline_s", "profile", "timings",
                                                   "warmup_batches"})
    # set by the build
    user_conf: dict[str, float]  # what user.conf already holds
    calibrate: tuple[str, ...]  # user.conf keys the child times and appends
    buffer_size: int  # LoadGen's performance sample count
    min_queries: int  # the least query floor a timed one may be (early stopping)
    preprocessed: str  # directory of the preprocessed data set entry (`load_arrays`)
    model: str  # directory of the model entry the runtime loads (PyTorch's, or a converted one)
    backend: Options  # how the runtime runs the model: the parameters declared "to": "backend"
    # the parameters declared "to": "harness", by their names
    loadgen_scenario: str
    loadgen_mode: str
    model_name: str  # the model name user.conf lines use
    loadgen_multistreamness: int = 8
    server_max_wait_ms: float = 1.0
    harness_baseline_s: float = 0.0  # seconds of bare-model timing around the test (0: none)
    num_instances: int = 1  # model copies, each on its own thread (and cores, when pinned)
    pin_cores: bool = True  # pin each instance to disjoint cores where the OS allows
    instance_kind: str = "thread"  # each instance a thread of the SUT's process, or a process (axq_mlperf.remote)
    sut_completion: str = "auto"  # how responses reach LoadGen (axq_mlperf.completion.KINDS)
    warmup_batches: int = 2  # batches each instance runs before anything is timed
    profile: bool = False  # after the test, profile a few batches with the runtime's profiler
    loadgen_execution: str = "test"  # test, or valid (the official run)
    # set by the build, if it has them
    timings: dict[str, float] = field(default_factory=dict)  # an earlier run's timings of this SUT (the build's cache)

    @classmethod
    def of(cls, params: Mapping[str, Any], **computed: Any) -> HarnessConfig:
        """Return the configuration of a run: its parameters that are fields here or of `backend`, and the rest."""
        from axq_mlperf.backends import Options
        from axq_mlperf.tasks import of_run

        backend = Options(**{name: params[name] for name in parameter_fields(Options)}, task=of_run(params))
        return cls(**{name: params[name] for name in parameter_fields(cls)}, backend=backend, **computed)

    def write(self, directory: Path) -> Path:
        """Write the configuration as config.json in directory; return its path."""
        path = Path(directory) / FILE
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> HarnessConfig:
        """Return the configuration in a config.json (a TypeError names a missing or unknown field)."""
        from axq_mlperf.backends import Options

        data = json.loads(Path(path).read_text(encoding="utf-8"))
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"{path}: unknown harness configuration fields {sorted(unknown)}")
        backend = Options(**{**data["backend"], "batch_sizes": tuple(data["backend"]["batch_sizes"])})
        return cls(**{**data, "calibrate": tuple(data["calibrate"]), "backend": backend})

    def timing_key(self, system: str) -> str:
        """Return a digest of what this SUT's speed on `system` depends on: the key of its cached timings."""
        import hashlib

        same = {k: v for k, v in asdict(self).items() if k not in self.UNTIMED}
        return hashlib.sha256(json.dumps([same, system], sort_keys=True).encode()).hexdigest()[:24]

    def backend_options(self) -> Options:
        """Return how the backend runs the model, padded to this scenario's batch sizes (backends.Options)."""
        return replace(self.backend, batch_sizes=self.batch_sizes)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Return the batch sizes the SUT runs in this scenario (a compiled model is padded to them).

        Offline: full batches (the last one padded); SingleStream: 1; MultiStream: a query, or
        batch_size of it; Server: any size, so powers of two up to batch_size (and 1 for timing).
        """
        from axq_mlperf.backends import bucket_sizes

        batch = self.backend.batch_size
        if self.loadgen_scenario == "Offline":
            return (batch,)
        if self.loadgen_scenario in ("SingleStream", "MultiStream"):
            return (min(self.query_size, batch),)
        return bucket_sizes(batch)

    @property
    def query_size(self) -> int:
        """Return the samples in one query of a stream scenario."""
        return self.loadgen_multistreamness if self.loadgen_scenario == "MultiStream" else 1


def parameter_fields(config: Any) -> list[str]:
    """Return the fields of a configuration dataclass that hold run parameters: all but its SET_BY_CODE."""
    return [f.name for f in fields(config) if f.name not in config.SET_BY_CODE]
