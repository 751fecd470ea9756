"""The typed configuration between a LoadGen recipe's build and its child process.

The build writes it as `config.json` in the entry directory; the child (`harness.py`) reads
it back. Dependencies travel as entry directories: the child opens them with
`axq.entry.Entry.at(path)` and calls their recipe code (`entry.call("load_model", ...)`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from axq_mlperf.backends import Options

FILE = "config.json"


@dataclass(frozen=True)
class HarnessConfig:
    """What one LoadGen test in the child needs: the test, the SUT's settings, its two inputs."""

    scenario: str
    mode: str
    model_name: str  # the model name user.conf lines use
    user_conf: dict[str, float]  # what user.conf already holds
    calibrate: tuple[str, ...]  # user.conf keys the child times and appends
    buffer_size: int  # LoadGen's performance sample count
    batch_size: int
    multistreamness: int
    server_max_wait_ms: float
    num_threads: int | None
    min_queries: int  # the least query floor a timed one may be (early stopping)
    baseline_s: float  # seconds of bare-model timing around the test (0: none)
    device: str
    precision: str
    preprocessed: str  # directory of the preprocessed data set entry (`load_arrays`)
    model: str  # directory of the model entry the runtime loads (PyTorch's, or a converted one)
    framework: str = "pytorch"  # the runtime (axq_mlperf.backends.FRAMEWORKS)
    compile: bool = False
    memory_format: str | None = None
    ov_hint: str | None = None
    ov_streams: int | None = None
    ort_optimization: str = "all"
    num_instances: int = 1  # model copies, each on its own thread (and cores, when pinned)
    pin_cores: bool = True  # pin each instance to disjoint cores where the OS allows
    instance_kind: str = "thread"  # each instance a thread of the SUT's process, or a process (axq_mlperf.remote)
    completion: str = "auto"  # how responses reach LoadGen (axq_mlperf.completion.KINDS)
    warmup_batches: int = 2  # batches each instance runs before anything is timed
    profile: bool = False  # after the test, profile a few batches with the runtime's profiler
    execution: str = "test"  # loadgen_execution: test, or valid (the official run)

    def write(self, directory: Path) -> Path:
        """Write the configuration as config.json in directory; return its path."""
        path = Path(directory) / FILE
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> HarnessConfig:
        """Return the configuration in a config.json (a TypeError names a missing or unknown field)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"{path}: unknown harness configuration fields {sorted(unknown)}")
        return cls(**{**data, "calibrate": tuple(data["calibrate"])})

    def backend_options(self) -> Options:
        """Return how the backend runs the model (axq_mlperf.backends.Options)."""
        from axq_mlperf.backends import Options

        return Options(framework=self.framework, device=self.device, precision=self.precision,
                       batch_size=self.batch_size, batch_sizes=self.batch_sizes, num_threads=self.num_threads,
                       compile=self.compile, memory_format=self.memory_format, ov_hint=self.ov_hint,
                       ov_streams=self.ov_streams, ort_optimization=self.ort_optimization)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """Return the batch sizes the SUT runs in this scenario (a compiled model is padded to them).

        Offline: full batches (the last one padded); SingleStream: 1; MultiStream: a query, or
        batch_size of it; Server: any size, so powers of two up to batch_size (and 1 for timing).
        """
        from axq_mlperf.backends import bucket_sizes

        if self.scenario == "Offline":
            return (self.batch_size,)
        if self.scenario in ("SingleStream", "MultiStream"):
            return (min(self.query_size, self.batch_size),)
        return bucket_sizes(self.batch_size)

    @property
    def query_size(self) -> int:
        """Return the samples in one query of a stream scenario."""
        return self.multistreamness if self.scenario == "MultiStream" else 1
