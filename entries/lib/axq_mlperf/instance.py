"""An instance process's side of `instance_kind=process`: the real backend, answering a socket.

Started by axq_mlperf.remote.RemoteBackend in the SUT's process, which holds the other end
of the socket and speaks the frames defined there (an 8-byte verb, then the body). The first
frame opens the backend (axq_mlperf.backends) on a model entry; then `predict` frames get
the answers back (remote.pack) and the rest are calls (`hold`, `profile`). The process ends when the
socket closes.

    python -m axq_mlperf.instance FD
"""

from __future__ import annotations

import os
import pickle
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from axq.entry import Entry
from axq.errors import AxqError
from axq_mlperf import backends
from axq_mlperf.remote import ERROR, OK, PREDICT, pack


def serve(conn: Connection) -> None:
    """Answer frames until the socket closes: the first opens the backend, then predict and calls."""
    backend: Any = None
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            if message[:8] == PREDICT:
                rows = np.frombuffer(message[8:], dtype=np.int64)
                reply = OK + pack(backend.predict(rows))
            else:
                name, args = pickle.loads(message[8:])
                if name == "open":
                    backend = backends.open_backend(Entry.at(args[0]), args[1])
                    result: Any = {**backend.describe(), "process": os.getpid(),
                                   "process_cores": sorted(os.sched_getaffinity(0))}
                elif name == "hold":
                    result = backend.hold(np.array(np.load(args[0], mmap_mode="r")))
                elif name == "profile":
                    result = [str(path) for path in backend.profile(args[0], Path(args[1]))]
                else:
                    raise ValueError(f"unknown call {name!r}")
                reply = OK + pickle.dumps(result)
        except Exception as error:  # the SUT raises it again; the traceback is for the run's log
            import traceback

            traceback.print_exc()
            reply = ERROR + pickle.dumps((type(error).__name__, str(error), isinstance(error, AxqError)))
        conn.send_bytes(reply)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
