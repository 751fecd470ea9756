"""An instance's backend in a process of its own (`instance_kind=process`), behind a socket.

Thread instances share one interpreter: a model whose inference holds the GIL much of the
time (PyTorch eager on a small CNN, many short operators) scales little over threads. A
process instance runs the real backend (axq_mlperf.backends) in a fresh interpreter,
started from the instance's thread so that it inherits that thread's cores, and the
instance thread drives it through `RemoteBackend` (what backends.open_backend returns
with Options.process), which has the Backend interface: the SUT, calibration, bare-loop
baselines and profiles work unchanged. LoadGen stays in the SUT's process (its responses
must come from there); only batch rows go out and the task's answers come back (`pack`). This module is
the SUT's side and the wire format; the instance's side is axq_mlperf.instance (which
imports backends: backends imports this module).

The held samples travel through shared memory: an .npy file on /dev/shm (tmpfs) that the
instance maps and copies, then the SUT deletes. Messages are one frame each: an 8-byte
verb, then the body (raw int64 rows for `predict` and answers as `pack` writes them, a
pickle for the rest). The instance
ends when its socket closes, so it never outlives the SUT's process, even one that ends
with os._exit.

    python -m axq_mlperf.instance FD   (started by RemoteBackend)
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from axq.errors import BuildError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PREDICT, CALL, OK, ERROR = b"predict ", b"call    ", b"ok      ", b"error   "
SHARED = Path("/dev/shm")


class RemoteError(RuntimeError):
    """An instance process failed in a way that is not the user's (its traceback is in the run's log)."""


class RemoteBackend:
    """The Backend interface, answered by an instance process that holds the real backend."""

    def __init__(self, model: str, options: DataclassInstance) -> None:
        """Start the instance process and open the model entry at path `model` there.

        `options` is the run's backends.Options (a dataclass; not imported here: backends
        imports this module); the instance opens its backend with `process=False`.
        """
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self.process = subprocess.Popen([sys.executable, "-m", "axq_mlperf.instance", str(theirs.fileno())],
                                        pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        theirs.close()
        self.conn = Connection(ours.detach())
        try:
            self.described: dict[str, Any] = self.call("open", model, dataclasses.replace(options, process=False))
        except BaseException:
            self.close()  # a process that could not open its model ends with the error, not later
            raise
        self.precision: str = self.described["precision"]

    def call(self, name: str, *args: Any) -> Any:
        """Run backend method `name` (or open/describe) in the instance; return its result."""
        return pickle.loads(self.exchange(CALL + pickle.dumps((name, args))))

    def exchange(self, message: bytes) -> bytes:
        """Send one frame; return the reply's body, raising the instance's error if it failed."""
        try:
            self.conn.send_bytes(message)
            reply = self.conn.recv_bytes()
        except (EOFError, OSError) as error:
            code = self.process.poll()
            raise RemoteError(f"the instance process ended (exit code {code}): see the run's log") from error
        if reply[:8] == OK:
            return reply[8:]
        kind, text, users = pickle.loads(reply[8:])
        raise BuildError(text) if users else RemoteError(f"{kind} in the instance process: {text}")

    def hold(self, images: np.ndarray) -> None:
        """Hand the samples over through a shared-memory file, then remove it."""
        where = SHARED if SHARED.is_dir() else None
        with tempfile.NamedTemporaryFile(dir=where, prefix="axq-samples-", suffix=".npy") as file:
            np.save(file, np.ascontiguousarray(images, dtype=np.float32))
            file.flush()
            self.call("hold", file.name)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Return the task's answers for held rows."""
        return unpack(self.exchange(PREDICT + np.asarray(rows, dtype=np.int64).tobytes()))

    def describe(self) -> dict[str, Any]:
        """Return what the instance runs, and its process id."""
        return dict(self.described)

    def profile(self, batches: list[np.ndarray], directory: Path) -> list[Path]:
        """Profile the batches in the instance; return the files it wrote."""
        return [Path(path) for path in self.call("profile", batches, str(directory))]

    def close(self) -> None:
        """End the instance process (it ends when its socket closes) and wait for it."""
        self.conn.close()
        self.process.wait(timeout=60)


def pack(answers: np.ndarray) -> bytes:
    """Return an answers array as bytes: its dtype (8 bytes), its number of dimensions, its shape, its data."""
    answers = np.ascontiguousarray(answers)
    header = answers.dtype.str.encode().ljust(8) + np.asarray([answers.ndim, *answers.shape], dtype=np.int64).tobytes()
    return header + answers.tobytes()


def unpack(message: bytes) -> np.ndarray:
    """Return the answers array `pack` wrote."""
    dtype = np.dtype(message[:8].strip().decode())
    ndim = int(np.frombuffer(message, dtype=np.int64, count=1, offset=8)[0])
    shape = tuple(np.frombuffer(message, dtype=np.int64, count=ndim, offset=16).tolist())
    return np.frombuffer(message, dtype=dtype, offset=16 + 8 * ndim).reshape(shape)
