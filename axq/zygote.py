"""Start Python scripts warm: forked from a process that has imported their runtime already.

A fresh `python script.py` of a LoadGen run spends most of a second or two importing torch
and the like before it does anything. A zygote (a fork server) is a long-lived child of axq
that has imported a given list of modules and nothing else: no thread pool started, no
library initialised beyond its import. Asked to run a script, it forks; the fork is a fresh
process in every way that matters, only warm:

- it leads its own process group and asks for SIGKILL when the zygote dies; the zygote was
  started with axq.process.spawn, so it dies with axq however axq dies, and the fork with it;
- it takes the caller's stdout and stderr (file descriptors passed over a unix socket),
  /dev/null as stdin, the caller's working directory, `sys.argv = [script, *args]` and the
  script's directory as `sys.path[0]`, then runs the script as `__main__` (runpy) and exits
  as `python script` would, with its status (a traceback and 1 for an exception, whatever
  `sys.exit` or `os._exit` says);
- the imported modules' objects are frozen (gc.freeze) before the first fork: a fork's
  collections, its exit's above all, skip them (a fresh process with torch spends about
  0.5 s of its exit collecting), and its pages stay shared with the zygote's;
- its environment is the zygote's: `ready(modules, env)` starts a new zygote when the
  environment asked for differs from the one the running zygote was started with.

The caller gets a `WarmChild`, which shows what axq uses of a subprocess.Popen (pid, stdout,
poll, wait, returncode) and is registered in axq.process, so stop_children stops it. The
zygote reaps the fork (its CPU time goes into the zygote's, a descendant of axq: it counts
as axq's own in axq.measure) and then reports the exit status.

Linux only (pidfds, the parent-death signal). `AXQ_WARM_START=0` turns warm starts off;
where they are off or the zygote cannot start, callers start scripts cold.

The zygote's side: `python -m axq.zygote CONTROL_FD MODULE...`. It reads requests (a JSON
object and two file descriptors: the output, and a socket for the answers) from the control
socket, one `SOCK_SEQPACKET` message each, and answers `pid N` once forked and `exit N`
once reaped. It exits when axq closes the control socket.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

from axq import process

WARM_ENV = "AXQ_WARM_START"
READY = b"zygote ready\n"
READY_TIMEOUT_S = 120.0
PR_SET_NAME = 15


class Unavailable(Exception):
    """The zygote could not start, or died: start the script cold."""


def enabled() -> bool:
    """Return whether scripts may start warm: Linux with pidfds, and AXQ_WARM_START is not 0."""
    return (sys.platform.startswith("linux") and hasattr(os, "pidfd_open")
            and os.environ.get(WARM_ENV, "1").strip().lower() not in ("0", "false", "no", "off"))


# ----------------------------------------------------------------------------- axq's side


class Zygote:
    """A running zygote: its process, its control socket and the environment it was started with."""

    def __init__(self, modules: tuple[str, ...], env: dict[str, str]) -> None:
        self.modules, self.env = modules, env
        self.lock = threading.Lock()
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with theirs:
                self.process = process.spawn([sys.executable, "-m", "axq.zygote", str(theirs.fileno()), *modules],
                                             pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as error:
            self.control.close()
            raise Unavailable(f"the zygote did not start: {error}") from None
        self._wait_ready()
        self.ready_at = time.time()

    def _wait_ready(self) -> None:
        """Wait until the zygote has imported its modules; stop it and raise Unavailable if it does not."""
        assert self.process.stdout is not None
        said = _read_until(self.process.stdout.fileno(), READY, READY_TIMEOUT_S)
        self.process.stdout.close()
        if not said.endswith(READY):
            self.stop()
            last = said.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise Unavailable(f"the zygote did not start: {last[0]}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the zygote (its forks die with it) and close the control socket."""
        process.stop_children(children=[self.process])
        self.control.close()

    def start(self, script: str, args: list[str], cwd: str | os.PathLike) -> WarmChild:
        """Fork `python script args` in cwd; return the registered child (raise Unavailable if the zygote is gone)."""
        reader, writer = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        request = {"script": os.path.abspath(script), "args": [str(a) for a in args], "cwd": os.fspath(cwd)}
        try:
            with self.lock:
                socket.send_fds(self.control, [json.dumps(request).encode()], [writer, theirs.fileno()])
        except OSError as error:
            os.close(reader)
            ours.close()
            raise Unavailable(f"the zygote is gone ({error})") from None
        finally:
            os.close(writer)
            theirs.close()
        child = WarmChild(ours, reader, [script, *request["args"]])
        process.adopt(child)
        return child


class WarmChild:
    """A script forked by a zygote, with what axq uses of a subprocess.Popen.

    `stdout` reads what the script writes to stdout and stderr (text); `wait` and `poll`
    read the exit status the zygote reports. If the zygote dies first, the child has been
    sent SIGKILL (its parent-death signal): `wait` makes sure it is gone and says -SIGKILL.
    """

    def __init__(self, answers: socket.socket, stdout: int, args: list[str]) -> None:
        self.args = args
        self.returncode: int | None = None
        self._answers, self._heard = answers, b""
        self._lock = threading.Lock()
        try:
            self.pid = int(self._answer("pid", None) or "0")
        except BaseException:
            os.close(stdout)
            answers.close()
            raise
        if not self.pid:
            os.close(stdout)
            answers.close()
            raise Unavailable("the zygote died before it forked")
        self._pidfd = os.pidfd_open(self.pid)
        self.stdout: IO[str] = open(stdout, errors="replace")  # noqa: SIM115 (the caller reads it to the end)

    def __repr__(self) -> str:
        return f"WarmChild(pid={self.pid}, returncode={self.returncode})"

    def poll(self) -> int | None:
        """Return the exit status if the child has ended, else None."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.wait(timeout=0)
        return None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end and return its status (as Popen: -N if signal N ended it)."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        try:
            if self.returncode is None:
                self.returncode = self._exit_status(timeout)
            return self.returncode
        finally:
            self._lock.release()

    def _exit_status(self, timeout: float | None) -> int:
        """Read the zygote's `exit N`; if the zygote is gone, kill the child and wait until it is gone."""
        said = self._answer("exit", timeout)
        if said is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            select.select([self._pidfd], [], [])
        os.close(self._pidfd)
        self._answers.close()
        return -int(signal.SIGKILL) if said is None else int(said)

    def _answer(self, word: str, timeout: float | None) -> str | None:
        """Return the value of the zygote's next `word N` line; None at the end of the answers."""
        while b"\n" not in self._heard:
            self._answers.settimeout(timeout)
            try:
                more = self._answers.recv(256)
            except (TimeoutError, BlockingIOError):
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
            except OSError:
                more = b""
            if not more:
                return None
            self._heard += more
        line, self._heard = self._heard.split(b"\n", 1)
        said, value = line.decode().split(" ", 1)
        assert said == word, f"the zygote said {line!r}, expected {word}"
        return value


def _read_until(fd: int, end: bytes, timeout_s: float) -> bytes:
    """Read fd until what was read ends with `end`, the end of the file, or timeout_s."""
    deadline, read = time.monotonic() + timeout_s, b""
    while not read.endswith(end):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        more = os.read(fd, 4096) if ready else b""
        if not more:
            break
        read += more
    return read


_zygotes: dict[tuple[str, ...], Zygote] = {}
_zygotes_lock = threading.Lock()


def ready(modules: tuple[str, ...], env: dict[str, str]) -> Zygote:
    """Return a running zygote with these modules and this environment, starting one if needed.

    One per module list: one started with another environment, or dead, is replaced.
    Raise Unavailable if it cannot start.
    """
    with _zygotes_lock:
        current = _zygotes.pop(modules, None)
        if current is not None and (current.env != env or not current.alive()):
            current.stop()
            current = None
        _zygotes[modules] = current or Zygote(modules, env)
        return _zygotes[modules]


# ----------------------------------------------------------------------------- the zygote's side


@dataclass(frozen=True)
class Job:
    """A script to run as __main__ in a fork: what `python script args` in cwd would run."""

    script: str
    args: list[str]
    cwd: str

    def run(self) -> None:
        """Become `python script args`: directory, argv, sys.path[0], process name; run the script."""
        import runpy

        os.chdir(self.cwd)
        sys.argv = [self.script, *self.args]
        sys.path.insert(0, os.path.dirname(self.script))
        _name_process(os.path.basename(self.script))
        try:
            runpy.run_path(self.script, run_name="__main__")
        except Exception as error:  # as `python script` shows it: no frames of ours
            _print_from(error, self.script)
            sys.exit(1)


def _print_from(error: BaseException, script: str) -> None:
    """Print the traceback of an error from the script's first frame on."""
    import traceback

    frame = error.__traceback__
    while frame is not None and frame.tb_frame.f_code.co_filename != script:
        frame = frame.tb_next
    traceback.print_exception(type(error), error, frame or error.__traceback__)


def _name_process(name: str) -> None:
    """Set the process name that ps and /proc/PID/comm show (the command line stays the zygote's)."""
    prctl = process.libc_prctl()
    if prctl is not None:
        prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


class Server:
    """The zygote's loop: fork a child for each request, report each child's pid and exit status."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.poller = select.poll()
        self.poller.register(control, select.POLLIN)
        self.running: dict[int, tuple[int, socket.socket]] = {}  # pidfd: (pid, answers)
        self.setup = process.child_setup(os.getpid())

    def serve(self) -> Job:
        """Serve until the control socket closes (then exit); return the job in a forked child."""
        while True:
            for fd, _ in self.poller.poll():
                if fd != self.control.fileno():
                    self.reap(fd)
                elif job := self.fork():
                    return job

    def fork(self) -> Job | None:
        """Take a request and fork its child; return its Job in the child, None in the zygote."""
        message, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 2)
        if not message:
            sys.exit(0)  # axq closed its end: it has stopped, or stopped wanting us
        output, answers = fds[0], socket.socket(fileno=fds[1])
        pid = os.fork()
        if pid == 0:
            self.become_child(output, answers)
            return Job(**json.loads(message))
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # as the child does: whoever runs first, the group exists before `pid N`
        os.close(output)
        pidfd = os.pidfd_open(pid)
        self.running[pidfd] = (pid, answers)
        self.poller.register(pidfd, select.POLLIN)
        with contextlib.suppress(OSError):
            answers.sendall(f"pid {pid}\n".encode())
        return None

    def become_child(self, output: int, answers: socket.socket) -> None:
        """In the fork: lead a group, die with the zygote, drop its sockets, take the caller's output."""
        os.setpgid(0, 0)
        if self.setup is not None:
            self.setup()
        for pidfd, (_, others) in self.running.items():
            os.close(pidfd)
            others.close()
        answers.close()
        self.control.close()
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(stdin)
        os.close(output)

    def reap(self, pidfd: int) -> None:
        """Reap the child that ended and tell its caller the status."""
        pid, answers = self.running.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        with contextlib.suppress(OSError), answers:
            answers.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())


def main(argv: list[str]) -> None:
    """Import the modules, say ready, serve; in a fork, run the requested script."""
    del sys.path[0]  # `-m` put the caller's directory first; a fork puts its script's there
    control = socket.socket(fileno=int(argv[0]))
    for module in argv[1:]:
        importlib.import_module(module)
    gc.freeze()  # what is imported stays: no fork's collections walk it (torch's exit: -0.4 s), no copies
    sys.stdout.flush()
    sys.stderr.flush()
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.write(1, READY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)
    Server(control).serve().run()


if __name__ == "__main__":
    main(sys.argv[1:])
