"""Run one MLPerf LoadGen test in this process: `python harness.py config.json`.

The recipe's build starts this script in a fresh process per test, in the output entry's
directory (axq_mlperf.child), because LoadGen loads its embedded mlperf.conf only on the
first `TestSettings.FromConfig` call of a process. config.json is an
axq_mlperf.config.HarnessConfig. The steps: open the data set and model entries with
`axq.entry.Entry.at`, load the samples (`load_arrays`) and open the model in the run's
backend (axq_mlperf.backends: PyTorch, ONNX Runtime or OpenVINO, behind one seam), warm the
model up and time it, turn the timings into the user.conf values the user left null, run
the test, and leave LoadGen's logs in the current directory.

The system under test: the QSL holds the loaded samples in the backend; a
worker thread takes chunks of samples off a queue that LoadGen's issuing thread fills,
runs them in batches of up to batch_size (for Server, waiting at most server_max_wait_ms
to fill one), and completes each batch with one QuerySamplesComplete call. A model that
raises ends the process at once with its reason in error.json, so LoadGen never hangs;
an axq.errors.AxqError's message is the user's, anything else is reported with its type.
"""

from __future__ import annotations

import json
import math
import os
import queue
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlperf_loadgen as lg
import numpy as np

from axq.entry import Entry
from axq.errors import BuildError
from axq_mlperf import backends, scenarios, userconf
from axq_mlperf.child import report_failure
from axq_mlperf.config import HarnessConfig
from axq_mlperf.results import CALIBRATION, SUT_STATS

# Timed targets and query floors aim this far above the measured speed: a fresh process
# runs up to ~1.5x faster after its first seconds (seen here), and a run that outpaces its
# target ends before min_duration (INVALID). Too high only lengthens a short run.
MARGIN = 2.0
SERVER_QPS_CAP = 10_000  # queries/s a Python SUT issues one by one without falling behind
SCENARIOS = {name: getattr(lg.TestScenario, name) for name in scenarios.SCENARIOS}
MODES = {name: getattr(lg.TestMode, name) for name in scenarios.MODES}


# ----------------------------------------------------------------------------- model


class Runner:
    """Hold LoadGen's loaded samples in the backend and run batches of them: predicted classes."""

    def __init__(self, backend: backends.Backend, images: Any) -> None:
        self.backend, self.images = backend, images
        self.rows = np.full(len(images), -1, dtype=np.int64)

    def load(self, indices: list[int]) -> None:
        """Hold these samples in the backend, ready to batch (LoadGen's load callback)."""
        order = np.asarray(sorted(set(indices)), dtype=np.int64)
        self.rows[:] = -1
        self.rows[order] = np.arange(len(order))
        self.backend.hold(np.ascontiguousarray(self.images[order], dtype=np.float32))

    def unload(self, indices: list[int]) -> None:
        """Drop the loaded samples (LoadGen's unload callback)."""
        self.backend.hold(np.empty((0, *self.images.shape[1:]), dtype=np.float32))

    def predict(self, indices: list[int]) -> np.ndarray:
        """Return the int64 predicted class of each loaded sample index."""
        return self.backend.predict(self.rows[indices])


def warm_up(worker: Worker, size: int, batches: int = 2) -> list:
    """Run a few batches of size (responses made, none sent); return the samples used."""
    count = len(worker.runner.images)
    samples = [SimpleNamespace(id=i, index=i % count) for i in range(size)]
    worker.runner.load([sample.index for sample in samples])
    for _ in range(batches):
        worker.respond(samples)
    return samples


def time_batches(worker: Worker, size: int, seconds: float) -> float:
    """Return the median seconds of a batch of size, responses included, after a warm-up."""
    samples = warm_up(worker, size, 1)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        began = time.perf_counter()
        worker.respond(samples)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


# ----------------------------------------------------------------------------- SUT


class Worker:
    """Take chunks of query samples off a queue, run them in batches, complete them."""

    def __init__(self, runner: Runner, batch_size: int, max_wait_s: float | None) -> None:
        self.runner, self.batch_size, self.max_wait_s = runner, batch_size, max_wait_s
        self.busy_s, self.batches, self.samples = 0.0, 0, 0
        self.buffer_size = len(runner.images)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.loop, name="sut-worker", daemon=True)
        self.thread.start()

    def issue(self, samples: list) -> None:
        """Queue LoadGen's samples in chunks of up to batch_size (LoadGen's issue callback)."""
        for start in range(0, len(samples), self.batch_size):
            self.queue.put(samples[start:start + self.batch_size])

    def flush(self) -> None:
        """Nothing to flush: every queued chunk runs as soon as the worker can take it."""

    def stop(self) -> None:
        """End the worker thread after what is queued."""
        self.queue.put(None)
        self.thread.join()

    def run_here(self, function: Any, *args: Any) -> Any:
        """Call function on the worker thread and return its result (timings match the test)."""
        future: Future = Future()
        self.queue.put((future, function, args))
        return future.result()

    def loop(self) -> None:
        """Run batches until stopped; on any error, report it and end the process."""
        try:
            while (batch := self.next_batch()) is not None:
                self.complete(batch)
        except BaseException as error:
            fail(error)

    def next_batch(self) -> list | None:
        """Return the next batch: one chunk, topped up to batch_size when waiting is allowed."""
        batch = self.queue.get()
        while isinstance(batch, tuple):
            future, function, args = batch
            future.set_result(function(*args))
            batch = self.queue.get()
        if batch is None or self.max_wait_s is None:
            return batch
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.batch_size and (left := deadline - time.perf_counter()) > 0:
            try:
                more = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if more is None:
                self.queue.put(None)
                break
            batch = batch + more
        return batch

    def respond(self, batch: list) -> tuple[np.ndarray, list]:
        """Predict a batch; return the int64 classes and LoadGen responses pointing at them."""
        predictions = self.runner.predict([sample.index for sample in batch])
        address, size = predictions.ctypes.data, predictions.itemsize
        return predictions, [lg.QuerySampleResponse(sample.id, address + i * size, size)
                             for i, sample in enumerate(batch)]

    def complete(self, batch: list) -> None:
        """Answer a batch with one QuerySamplesComplete call (predictions kept alive till then)."""
        began = time.perf_counter()
        predictions, responses = self.respond(batch)
        lg.QuerySamplesComplete(responses)
        del predictions
        self.busy_s += time.perf_counter() - began
        self.batches, self.samples = self.batches + 1, self.samples + len(batch)


def fail(error: BaseException) -> None:
    """Write the error for the parent build and end the process now, test or no test."""
    traceback.print_exception(error)
    report_failure(error)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(3)


# ----------------------------------------------------------------------------- settings


def calibrate(config: HarnessConfig, worker: Worker) -> dict[str, float]:
    """Warm the model up; return user.conf values for the targets left null, from timings."""
    scenario, batch = config.scenario, config.batch_size
    warm_up(worker, batch)
    if not config.calibrate:
        return {}
    if scenarios.is_stream(scenario):
        return stream_targets(config, time_batches(worker, config.query_size, 0.2))
    seconds = time_batches(worker, batch, 0.3)
    if scenario == "Offline":
        return offline_targets(config, batch / seconds)
    return server_targets(config, batch / seconds, seconds, time_batches(worker, 1, 0.1))


def stream_targets(config: HarnessConfig, query_s: float) -> dict[str, float]:
    """Return the stream scenario's latency target and/or query floor from one query's time."""
    targets: dict[str, float] = {}
    if "target_latency" in config.calibrate:
        targets["target_latency"] = round(0.5e3 * query_s, 6)
    if "min_query_count" in config.calibrate:
        enough = math.ceil(MARGIN * config.user_conf["min_duration"] / 1000 / query_s)
        targets["min_query_count"] = max(config.min_queries, enough)
    return targets


def offline_targets(config: HarnessConfig, throughput: float) -> dict[str, float]:
    """Return the Offline target QPS and/or sample floor, MARGIN above the timed throughput."""
    targets: dict[str, float] = {}
    if "target_qps" in config.calibrate:
        targets["target_qps"] = round(MARGIN * throughput, 3)
    if "min_query_count" in config.calibrate:
        targets["min_query_count"] = math.ceil(MARGIN * throughput * config.user_conf["min_duration"] / 1000)
    return targets


def server_targets(config: HarnessConfig, throughput: float, batch_s: float, single_s: float) -> dict[str, float]:
    """Return the Server targets left null: a QPS well within reach, a loose latency bound.

    The QPS is the least of half the batched throughput, twice the one-sample rate (a tiny
    model is bound by the cost of each query, not of each batch) and SERVER_QPS_CAP.
    """
    targets: dict[str, float] = {}
    if "target_qps" in config.calibrate:
        targets["target_qps"] = round(min(0.5 * throughput, 2 / single_s, SERVER_QPS_CAP), 3)
    if "target_latency" in config.calibrate:
        wait_ms = config.server_max_wait_ms
        targets["target_latency"] = max(10, int(8 * batch_s * 1e3 + 2 * wait_ms) + 1)
    return targets


def make_settings(config: HarnessConfig) -> Any:
    """Return LoadGen's TestSettings: embedded mlperf.conf, then user.conf, then the mode."""
    settings = lg.TestSettings()
    status = settings.FromConfig("user.conf", config.model_name, config.scenario)
    if status != 0:
        raise BuildError(f"LoadGen rejected user.conf (status {status}); see the log")
    settings.scenario = SCENARIOS[config.scenario]
    settings.mode = MODES[config.mode]
    return settings


def log_settings() -> Any:
    """Return LoadGen log settings: logs in the current directory, none to stdout."""
    log = lg.LogSettings()
    log.log_output.outdir = os.getcwd()
    log.log_output.copy_summary_to_stdout = True
    log.enable_trace = False
    return log


# ----------------------------------------------------------------------------- main


def load_runner(config: HarnessConfig) -> Runner:
    """Load the data set and open the model entry in the run's backend (it never says which)."""
    images, _ = Entry.at(config.preprocessed).call("load_arrays")
    backend = backends.open_backend(Entry.at(config.model), config.backend_options())
    print(f"harness: backend {json.dumps(backend.describe())}", flush=True)
    return Runner(backend, images)


def run(config: HarnessConfig) -> None:
    """Load, calibrate, finish user.conf, run the LoadGen test."""
    runner = load_runner(config)
    wait = config.server_max_wait_ms / 1e3 if config.scenario == "Server" else None
    worker = Worker(runner, config.batch_size, wait)
    worker.buffer_size = config.buffer_size
    settings = finish_settings(config, worker.run_here(calibrate, config, worker))
    sut = lg.ConstructSUT(worker.issue, worker.flush)
    qsl = lg.ConstructQSL(len(runner.images), config.buffer_size, runner.load, runner.unload)
    warm = baseline(config, worker)  # discarded: a fresh process runs slower for seconds
    bare = baseline(config, worker)
    began = time.perf_counter()
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings())
        test_s = time.perf_counter() - began
        bare += baseline(config, worker)
    finally:
        worker.stop()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    write_sut_stats(worker, test_s, bare, warm)


def baseline(config: HarnessConfig, worker: Worker) -> list[float]:
    """Time the same batches in a bare loop on the worker thread (no LoadGen): samples/s.

    When harness_baseline_s > 0: once to warm up (discarded: a fresh process runs slower
    for its first seconds), then right before and right after the test, whose mean is the
    baseline (a drift during the test cancels out). So the harness's rate is compared with
    the bare model's in the same process (two processes running the same loop differ by
    tens of percent on a shared machine).
    """
    seconds = config.baseline_s
    if not seconds:
        return []
    return [worker.run_here(bare_rate, worker, config.batch_size, seconds)]


def bare_rate(worker: Worker, batch: int, seconds: float) -> float:
    """Return samples/s of predict() on shuffled batches of the data set, nothing else."""
    runner = worker.runner
    count = min(len(runner.images), worker.buffer_size)
    runner.load(list(range(count)))
    order = np.random.default_rng(0).permutation(count).tolist()
    batches = [order[i:i + batch] for i in range(0, count - batch + 1, batch)] or [order]
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        chosen = batches[(done // batch) % len(batches)]
        runner.predict(chosen)
        done += len(chosen)
    return done / (time.perf_counter() - began)


def write_sut_stats(worker: Worker, test_s: float, bare: list[float], warm: list[float]) -> None:
    """Record how busy the SUT was during the test and, if timed, the bare model's rate."""
    stats = {"test_wall_s": round(test_s, 4), "sut_busy_s": round(worker.busy_s, 4),
             "batches": worker.batches, "samples": worker.samples,
             "mean_batch": round(worker.samples / max(worker.batches, 1), 2),
             "backend": worker.runner.backend.describe()}
    if bare:
        stats["bare_samples_per_s"] = round(sum(bare) / len(bare), 2)
        stats["bare_runs_samples_per_s"] = [round(b, 2) for b in [*warm, *bare]]
    Path(SUT_STATS).write_text(json.dumps(stats), encoding="utf-8")


def finish_settings(config: HarnessConfig, calibrated: dict[str, float]) -> Any:
    """Add the calibrated targets to user.conf, check the file, return LoadGen's settings."""
    conf, model, scenario = Path("user.conf"), config.model_name, config.scenario
    userconf.append(conf, model, scenario, calibrated)
    userconf.check(conf, model, scenario, {**config.user_conf, **calibrated})
    Path(CALIBRATION).write_text(json.dumps(calibrated), encoding="utf-8")
    print(f"harness: calibrated {json.dumps(calibrated)}", flush=True)
    return make_settings(config)


def main() -> None:
    """Read the config named on the command line and run its test, reporting any failure."""
    try:
        run(HarnessConfig.read(Path(sys.argv[1])))
    except BaseException as error:
        fail(error)


if __name__ == "__main__":
    main()
