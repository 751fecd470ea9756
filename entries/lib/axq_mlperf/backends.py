"""Run a model behind one seam, whatever the runtime: PyTorch, ONNX Runtime, OpenVINO.

A backend loads a model entry, holds the samples the SUT has loaded as its runtime takes
them (`hold`), returns the task's answers for each sample of a batch (`predict`: the
runtime's output decoded by the run's task, axq_mlperf.tasks: an image classifier's int64
class, a detector's boxes) and says what it really runs (`precision`, `describe()`): the LoadGen harness, the
quantization recipe's accuracy check and the benchmarks use it alike and never ask which
runtime they have (`open_backend` picks it from `Options.framework`).

Which model entry a run needs (`model_format`): the PyTorch model itself for PyTorch at
fp32/bf16/fp16; a converted or quantized entry (`model,converted,format=...`) otherwise.
Honest precisions: OpenVINO runs bf16 on CPUs that have it unless told f32, so fp32 asks
`INFERENCE_PRECISION_HINT=f32`, and bf16 is refused where the compiled model would not
run it. torch.compile (`compile=true`, always for int8, with inductor's freezing, which
int8 needs) compiles static shapes: batches are padded to the next of a few sizes
(powers of two up to batch_size), each compiled once while loading, never mid-test.

Light at import (resolve-time hooks use `model_format` and `check`): numpy, torch and the
runtimes are imported where a backend is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from axq.errors import BuildError, ParameterError

if TYPE_CHECKING:
    import numpy as np

    from axq.entry import Entry

# framework= values: onnxrt is axs's spelling of onnxruntime.
FRAMEWORKS = {"pytorch": "pytorch", "onnxruntime": "onnxruntime", "onnxrt": "onnxruntime", "openvino": "openvino"}
FORMATS = {"onnxruntime": "onnx", "openvino": "openvino", "pytorch": "pytorch"}
PRECISIONS: dict[str, dict[str, tuple[str, ...]]] = {  # what each runtime runs here, by device kind
    "pytorch": {"cpu": ("fp32", "bf16", "int8"), "cuda": ("fp32", "bf16", "fp16")},
    "onnxruntime": {"cpu": ("fp32", "int8"), "cuda": ("fp32",)},
    "openvino": {"cpu": ("fp32", "bf16", "int8")},
}
ORT_LEVELS = ("disable", "basic", "extended", "all")
OV_HINTS = ("LATENCY", "THROUGHPUT")


@dataclass(frozen=True)
class Options:
    """How to run a model: the runtime, device, precision and the runtime knobs that matter.

    A field named like a loadgen_program parameter declared `"to": "backend"` holds its
    value (config.HarnessConfig.of copies them), with the declared default; the harness
    sets the others (SET_BY_CODE) per instance.
    """

    SET_BY_CODE: ClassVar[frozenset[str]] = frozenset({"batch_sizes", "pinned", "process", "task"})
    framework: str  # a FRAMEWORKS key
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 32  # the largest batch predict() gets
    batch_sizes: tuple[int, ...] = ()  # compiled: the sizes batches are padded to (): bucket_sizes(batch_size)
    num_threads: int | None = None  # None: the runtime's default (every core)
    pinned: bool = False  # the opening thread is pinned to its instance's cores: the runtime keeps to them
    process: bool = False  # run the backend in a process of its own (axq_mlperf.remote), driven from here
    compile: bool = False  # PyTorch: torch.compile (always for int8)
    memory_format: str | None = None  # PyTorch: channels_last or contiguous; None: channels_last on CPU
    ov_hint: str | None = None  # OpenVINO PERFORMANCE_HINT; None: LATENCY
    ov_streams: int | None = None  # OpenVINO NUM_STREAMS; None: the hint's choice
    ort_optimization: str = "all"  # ONNX Runtime graph optimisation level (ORT_LEVELS)
    task: str = "image_classification"  # what the model's output means (axq_mlperf.tasks): how predict decodes it

    @property
    def runtime(self) -> str:
        """Return the runtime's canonical name (onnxrt -> onnxruntime)."""
        return FRAMEWORKS[self.framework]

    @property
    def device_kind(self) -> str:
        """Return cpu or cuda (cuda:1 -> cuda)."""
        return self.device.split(":")[0]


@dataclass(frozen=True)
class Model:
    """A model as a backend opens it: a converted model's file, or a loader of a PyTorch module."""

    precision: str = "fp32"  # what the model itself stores: fp32, or int8 once quantized
    file: Path | None = None  # ONNX or OpenVINO IR
    load: Callable[[str], Any] | None = None  # device -> torch.nn.Module
    postprocess: Callable[[Any], Any] | None = None  # the graph's first output -> what the task decodes (None: it)

    @classmethod
    def of(cls, entry: Entry) -> Model:
        """Return the model of an entry: its file if converted, else its recipe's `load_model`; its post-processing."""
        from axq_mlperf.detectors import postprocess_of

        precision, postprocess = str(entry.results.get("precision", "fp32")), postprocess_of(entry)
        if entry.results.get("format") in ("onnx", "openvino"):
            return cls(precision, file=entry.path / entry.results["file"], postprocess=postprocess)
        return cls(precision, load=lambda device: entry.call("load_model", device), postprocess=postprocess)


class Backend(Protocol):
    """What the SUT needs of a runtime: hold the loaded samples, predict a batch, say what it runs."""

    precision: str  # the precision it really runs

    def hold(self, images: np.ndarray) -> None:
        """Keep these samples (N x C x H x W float32) ready to batch, replacing any held."""

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Return the task's answers for the held samples in rows (a classifier's: int64 classes)."""

    def describe(self) -> dict[str, Any]:
        """Return the runtime, precision and knobs really in use (for the run's records)."""

    def profile(self, batches: list[np.ndarray], directory: Path) -> list[Path]:
        """Predict these batches of held rows under the runtime's own profiler; return the files it wrote."""

    def close(self) -> None:
        """Release what outlives the process's own exit (a backend's process); nothing for most."""


# ----------------------------------------------------------------------------- choosing


def model_format(framework: str, precision: str) -> tuple[str, str] | None:
    """Return the (format, precision) of the converted model a run needs, None for the PyTorch model."""
    runtime = FRAMEWORKS[framework]
    if runtime == "pytorch" and precision != "int8":
        return None
    return FORMATS[runtime], "int8" if precision == "int8" else "fp32"


def runtime_model_query(params: dict) -> tuple[str, dict] | None:
    """Return the query and overrides of the converted model a LoadGen run needs (None: the PyTorch model).

    params are the run's (framework, precision, model_name, dataset_name, and for ImageNet
    weights_path, imagenet_dir, loadgen_dataset_size; for int8 accuracy_target,
    calibration_size, calibration_dir). An fp32 conversion gets none of the int8 settings,
    so every run of the same model shares it.
    """
    needed = model_format(params["framework"], params["precision"])
    if needed is None:
        return None
    overrides = {"format": needed[0], "precision": needed[1], "model_name": params["model_name"],
                 "dataset_name": params["dataset_name"]}
    imagenet = params["dataset_name"] == "imagenet"
    if imagenet or params["dataset_name"] == "coco":
        overrides["weights_path"] = params.get("weights_path")
    if params["dataset_name"] == "coco":
        overrides["image_size"] = params.get("image_size")
    if params.get("fashion_mnist_dir") is not None:  # the model trained (and checked) on the data named
        overrides["fashion_mnist_dir"] = params["fashion_mnist_dir"]
    if needed[1] == "int8":
        overrides.update({k: params[k] for k in ("accuracy_target", "calibration_size")})
    if needed[1] == "int8" and params["dataset_name"] in ("imagenet", "coco"):
        folder = "imagenet_dir" if imagenet else "coco_dir"
        overrides.update({"calibration_dir": params["calibration_dir"], folder: params[folder],
                          "check_size": params["loadgen_dataset_size"]})
    return "model,converted", overrides


def check_knobs(params: dict) -> None:
    """Raise ParameterError for a runtime knob set for a runtime the run does not use."""
    runtime = FRAMEWORKS[params["framework"]]
    for name, owner, unset in KNOBS:
        if params.get(name, unset) != unset and runtime != owner:
            raise ParameterError(name, params[name], f"is a setting of framework={owner}, "
                                 f"not of framework={params['framework']}")


KNOBS = (("compile", "pytorch", False), ("memory_format", "pytorch", None), ("ov_hint", "openvino", None),
         ("ov_streams", "openvino", None), ("ort_optimization", "onnxruntime", "all"))


def check(framework: str, device: str, precision: str) -> None:
    """Raise ParameterError unless the runtime runs this precision on this device."""
    runtime, kind = FRAMEWORKS[framework], device.split(":")[0]
    allowed = PRECISIONS[runtime].get(kind)
    if allowed is None:
        raise ParameterError("device", device, f"framework={framework} runs on "
                             + " or ".join(f"device={d}" for d in PRECISIONS[runtime]))
    if precision not in allowed:
        others = [d for d, found in PRECISIONS[runtime].items() if precision in found]
        where = f"; it needs device={others[0]}" if others else ""
        raise ParameterError("precision", precision, f"framework={framework} on device={kind} runs "
                             + " or ".join(allowed) + where)


def open_backend(model: Entry | Model, options: Options) -> Backend:
    """Return the backend of the options' runtime with the model (an entry's, or a Model) loaded.

    With options.process, the backend runs in a process of its own that inherits the calling
    thread's cores (axq_mlperf.remote); the model must then be an entry.
    """
    check(options.framework, options.device, options.precision)
    if options.process:
        from axq_mlperf import remote

        assert not isinstance(model, Model), "a backend in a process of its own opens an entry's model"
        return remote.RemoteBackend(str(model.path), options)
    return OPENERS[options.runtime](model if isinstance(model, Model) else Model.of(model), options)


def answer_all(backend: Backend, images: Any, batch_size: int) -> np.ndarray:
    """Return the answers for every image (a classifier's: its class), batch by batch (held all at once)."""
    import numpy as np

    backend.hold(np.ascontiguousarray(images, dtype=np.float32))
    rows = np.arange(len(images), dtype=np.int64)
    return np.concatenate([backend.predict(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)])


def bucket_sizes(batch_size: int) -> tuple[int, ...]:
    """Return the padded batch sizes of a compiled model: powers of two below batch_size, and it."""
    sizes, size = {batch_size}, 1
    while size < batch_size:
        sizes.add(size)
        size *= 2
    return tuple(sorted(sizes))


def decoder(options: Options, model: Model) -> Callable[[Any], Any]:
    """Return how the run's task turns the runtime's first output (a numpy array, or a torch tensor) into answers.

    A model whose graph stops short of its answers (a COCO detector's heads) is post-processed first.
    """
    from axq_mlperf import tasks

    decode, postprocess = tasks.get(options.task).decode, model.postprocess
    if postprocess is None:
        return decode
    return lambda output: decode(postprocess(output))


# ----------------------------------------------------------------------------- PyTorch


class TorchBackend:
    """PyTorch, eager or compiled: the model entry's `load_model`, samples held on the device."""

    def __init__(self, model: Model, options: Options) -> None:
        import torch

        self.options, self.precision, self.decode = options, options.precision, decoder(options, model)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(options.precision, torch.float32)
        self.channels_last = (options.memory_format or default_memory_format(options.device)) == "channels_last"
        if options.num_threads is not None:
            torch.set_num_threads(options.num_threads)
        if options.device_kind == "cuda" and not torch.cuda.is_available():
            raise BuildError("device=cuda but torch sees no CUDA device here; use device=cpu")
        assert model.load is not None, "a PyTorch backend needs a PyTorch model"
        self.model = self.prepared(model.load(options.device))
        self.data = torch.empty(0)
        self.sizes = (options.batch_sizes or bucket_sizes(options.batch_size)) if self.compiled else ()
        self.shapes: set[tuple[int, ...]] = set()  # sample shapes compiled for

    @property
    def compiled(self) -> bool:
        """Say whether the model runs through torch.compile (asked for, or int8)."""
        return self.options.compile or self.precision == "int8"

    def prepared(self, model: Any) -> Any:
        """Return the model in the run's dtype and memory format, compiled when asked."""
        import torch

        if self.precision != "int8":  # a quantized graph keeps its own dtypes
            model = model.to(self.options.device, self.dtype)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
        if not self.compiled:
            return model
        return torch.compile(model, dynamic=False)

    def hold(self, images: np.ndarray) -> None:
        """Hold the samples on the device in the run's dtype and memory format (compiling on a new shape)."""
        import torch

        data = torch.from_numpy(images).to(self.options.device, self.dtype)
        self.data = data.contiguous(memory_format=torch.channels_last) if self.channels_last else data
        if self.sizes and len(images) and tuple(images.shape[1:]) not in self.shapes:
            self.compile_sizes()
            self.shapes.add(tuple(images.shape[1:]))

    def compile_sizes(self) -> None:
        """Run every padded batch size once, so that no compilation happens during a test."""
        import numpy as np

        for size in self.sizes:
            self.predict(np.zeros(size, dtype=np.int64))

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Return the answers for the held samples in rows (padded to a compiled size if compiled)."""
        import torch

        count = len(rows)
        if self.sizes:
            frozen_weights()
        with torch.inference_mode():
            batch = self.data.index_select(0, torch.from_numpy(rows).to(self.data.device))
            if self.sizes:
                batch = self.padded(batch, count)
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            answers = self.decode(self.model(batch)[:count])  # a task decodes torch's tensors as numpy's arrays
            return answers.to("cpu", torch.float32 if answers.is_floating_point() else answers.dtype).numpy()

    def padded(self, batch: Any, count: int) -> Any:
        """Return the batch padded with zeros to the smallest compiled size that holds it."""
        import torch

        size = next((s for s in self.sizes if s >= count), count)
        if size == count:
            return batch
        return torch.cat([batch, batch.new_zeros((size - count, *batch.shape[1:]))])

    def profile(self, batches: list[np.ndarray], directory: Path) -> list[Path]:
        """Profile the batches with torch.profiler: a Chrome trace and a table of the costliest operators."""
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as profiled

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.options.device_kind == "cuda" else [])
        with profiled(activities=activities, record_shapes=True) as profiler:
            for rows in batches:
                self.predict(rows)
        trace, table = directory / "torch_trace.json", directory / "torch_operators.txt"
        profiler.export_chrome_trace(str(trace))
        table.write_text(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=40), encoding="utf-8")
        return [trace, table]

    def close(self) -> None:
        """Nothing to release: the process's exit frees the runtime."""

    def describe(self) -> dict[str, Any]:
        """Return what runs: PyTorch, precision, threads, memory format, compiled sizes."""
        import torch

        return {"framework": "pytorch", "precision": self.precision, "device": self.options.device,
                "num_threads": torch.get_num_threads(), "compiled": self.compiled,
                "memory_format": "channels_last" if self.channels_last else "contiguous",
                "compiled_batch_sizes": list(self.sizes)}


def frozen_weights() -> None:
    """Have inductor compile weights as constants (freezing) on this thread: int8 needs it, fp32/bf16 gain.

    torch's inductor settings are per thread, and a model compiles on the thread that first
    calls it (here the SUT's worker): set on another thread, int8 silently runs dequantized
    fp32 convolutions (ResNet50: 25 samples/s instead of 160).
    """
    import torch._inductor.config as inductor

    inductor.freezing = True


def default_memory_format(device: str) -> str:
    """Return the memory format that helps convolutions on the device: channels_last on CPU."""
    return "channels_last" if device.startswith("cpu") else "contiguous"


# ----------------------------------------------------------------------------- ONNX Runtime


class OnnxRuntimeBackend:
    """ONNX Runtime on an ONNX model entry (fp32, or int8 QDQ), samples held as one numpy array."""

    def __init__(self, model: Model, options: Options) -> None:
        import onnxruntime as ort

        self.options, self.precision, self.decode = options, model.precision, decoder(options, model)
        providers = ["CUDAExecutionProvider"] if options.device_kind == "cuda" else ["CPUExecutionProvider"]
        if providers[0] not in ort.get_available_providers():
            raise BuildError(f"onnxruntime here has no {providers[0]} (it has "
                             f"{', '.join(ort.get_available_providers())}); use device=cpu")
        self.file, self.providers = str(model.file), providers
        self.session = ort.InferenceSession(self.file, session_options(options), providers=providers)
        self.input = self.session.get_inputs()[0].name
        self.data: Any = None

    def hold(self, images: np.ndarray) -> None:
        """Hold the samples as a contiguous float32 array."""
        import numpy as np

        self.data = np.ascontiguousarray(images, dtype=np.float32)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Return the answers for the held samples in rows."""
        return self.decode(self.session.run(None, {self.input: self.data[rows]})[0])

    def profile(self, batches: list[np.ndarray], directory: Path) -> list[Path]:
        """Profile the batches in a second session with ONNX Runtime's profiling on (its JSON trace).

        A second session: profiling is a session option, and the measured one must not pay for it.
        """
        import onnxruntime as ort

        settings = session_options(self.options)
        settings.enable_profiling = True
        settings.profile_file_prefix = str(directory / "onnxruntime")
        session = ort.InferenceSession(self.file, settings, providers=self.providers)
        for rows in batches:
            session.run(None, {self.input: self.data[rows]})
        return [Path(session.end_profiling())]

    def close(self) -> None:
        """Nothing to release: the process's exit frees the runtime."""

    def describe(self) -> dict[str, Any]:
        """Return what runs: ONNX Runtime, precision, provider, threads, optimisation level."""
        return {"framework": "onnxruntime", "precision": self.precision, "device": self.options.device,
                "provider": self.session.get_providers()[0], "num_threads": self.options.num_threads,
                "graph_optimization": self.options.ort_optimization}


def session_options(options: Options) -> Any:
    """Return ONNX Runtime's session options: threads (one inter-op) and optimisation level."""
    import onnxruntime as ort

    levels = ort.GraphOptimizationLevel
    chosen = dict(zip(ORT_LEVELS, (levels.ORT_DISABLE_ALL, levels.ORT_ENABLE_BASIC,
                                   levels.ORT_ENABLE_EXTENDED, levels.ORT_ENABLE_ALL), strict=True))
    session = ort.SessionOptions()
    session.graph_optimization_level = chosen[options.ort_optimization]
    session.inter_op_num_threads = 1
    if options.num_threads is not None:
        session.intra_op_num_threads = options.num_threads
    return session


# ----------------------------------------------------------------------------- OpenVINO


class OpenVinoBackend:
    """OpenVINO on an IR model entry: each batch split over the compiled model's streams."""

    def __init__(self, model: Model, options: Options) -> None:
        import openvino as ov

        self.options, self.file, self.decode = options, str(model.file), decoder(options, model)
        self.compiled = ov.Core().compile_model(self.file, "CPU", ov_config(options))
        self.precision = self.checked_precision(model.precision)
        self.streams = int(self.compiled.get_property("NUM_STREAMS"))
        self.requests = [self.compiled.create_infer_request() for _ in range(self.streams)]
        self.data: Any = None

    def checked_precision(self, stored: str) -> str:
        """Return the precision that really runs; raise if it is not the one asked for."""
        runs = str(self.compiled.get_property("INFERENCE_PRECISION_HINT")).split("'")[-2:-1] or ["?"]
        running = {"float32": "fp32", "f32": "fp32", "bfloat16": "bf16", "bf16": "bf16"}.get(runs[0], runs[0])
        if stored == "int8":
            return "int8" if running == "fp32" else f"int8 ({running} elsewhere)"
        if running != self.options.precision:
            raise BuildError(f"openvino on this CPU runs {running}, not precision={self.options.precision}; "
                             f"use precision={running}")
        return running

    def hold(self, images: np.ndarray) -> None:
        """Hold the samples as a contiguous float32 array."""
        import numpy as np

        self.data = np.ascontiguousarray(images, dtype=np.float32)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Return the answers for the held samples in rows, a part per stream run at once."""
        import numpy as np

        batch = self.data[rows]
        if self.streams == 1 or len(rows) < self.streams:
            return self.decode(self.requests[0].infer({0: batch})[0])
        parts = np.array_split(batch, self.streams)
        for request, part in zip(self.requests, parts, strict=True):
            request.start_async({0: part})
        for request in self.requests:
            request.wait()
        return np.concatenate([self.decode(request.get_output_tensor(0).data) for request in self.requests])

    def profile(self, batches: list[np.ndarray], directory: Path) -> list[Path]:
        """Profile the batches in a model compiled with PERF_COUNT: per-layer counters, summed, costliest first."""
        import json

        import openvino as ov

        compiled = ov.Core().compile_model(self.file, "CPU", {**ov_config(self.options), "PERF_COUNT": True})
        request = compiled.create_infer_request()
        layers: dict[str, dict[str, Any]] = {}
        for rows in batches:
            request.infer({0: self.data[rows]})
            for info in request.get_profiling_info():
                layer = layers.setdefault(info.node_name, {"node_type": info.node_type, "exec_type": info.exec_type,
                                                           "real_time_us": 0.0, "cpu_time_us": 0.0})
                layer["real_time_us"] += info.real_time.total_seconds() * 1e6 / len(batches)
                layer["cpu_time_us"] += info.cpu_time.total_seconds() * 1e6 / len(batches)
        ranked = sorted(({"node_name": name, **layer} for name, layer in layers.items()),
                        key=lambda layer: -layer["real_time_us"])
        path = directory / "openvino_layers.json"
        path.write_text(json.dumps({"batches": len(batches), "per_batch": ranked}, indent=1), encoding="utf-8")
        return [path]

    def close(self) -> None:
        """Nothing to release: the process's exit frees the runtime."""

    def describe(self) -> dict[str, Any]:
        """Return what runs: OpenVINO, precision, hint, streams, threads."""
        return {"framework": "openvino", "precision": self.precision, "device": self.options.device,
                "performance_hint": str(self.compiled.get_property("PERFORMANCE_HINT")),
                "streams": self.streams, "num_threads": int(self.compiled.get_property("INFERENCE_NUM_THREADS")),
                "cpu_pinning": bool(self.compiled.get_property("ENABLE_CPU_PINNING"))}


def ov_config(options: Options) -> dict[str, Any]:
    """Return OpenVINO's compile settings: the precision hint, the performance hint, streams, threads."""
    hint = {"bf16": "bf16"}.get(options.precision, "f32")  # int8: what stays unquantized runs f32
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": options.ov_hint or "LATENCY"}
    if options.ov_streams is not None:
        config["NUM_STREAMS"] = options.ov_streams
    if options.num_threads is not None:
        config["INFERENCE_NUM_THREADS"] = options.num_threads
    if options.pinned:
        # OpenVINO's own pinning takes its cores from the process's first view of them: two
        # pinned instances both ran on the first instance's core, at half the speed of one.
        # Unpinned, its threads inherit the instance thread's cores.
        config["ENABLE_CPU_PINNING"] = False
    return config


OPENERS: dict[str, Callable[[Model, Options], Backend]] = {
    "pytorch": TorchBackend, "onnxruntime": OnnxRuntimeBackend, "openvino": OpenVinoBackend}
