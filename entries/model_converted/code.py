"""Convert a PyTorch model entry for another runtime, or quantize it to int8: an entry of its own.

Each rule (recipe.json) builds a cached entry from the graph, on demand:

- `format=onnx,precision=fp32`: `torch.onnx.export` (the dynamo exporter) of the PyTorch
  model, the batch dimension dynamic, one self-contained `model.onnx`;
- `format=openvino,precision=fp32`: the ONNX entry converted to OpenVINO IR (`model.xml`,
  `model.bin`), weights kept fp32 (`ov.save_model` halves them to fp16 unless told not to);
- `precision=int8` (`format=onnx`, `openvino` or `pytorch`): post-training static
  quantization, as Intel's Neural Compressor does for MLPerf, calibrated on
  `calibration_size` images of the training split (seeded choice; never the scored images;
  ImageNet: the folder `calibration_dir`): ONNX Runtime's `quantize_static` (QDQ,
  per-channel int8 weights), NNCF on the fp32 IR, PT2E with the x86 inductor quantizer (the
  model's shared ReLUs split first, which that quantizer needs). The build then classifies a
  held-out check set (the test split) with the fp32 and the int8 model through
  axq_mlperf.backends, records both accuracies, and refuses a model that keeps less than
  `accuracy_target` (0.99: MLPerf's ResNet50 rule) of the fp32 accuracy.

A converted entry's results name its file and precision (`file`, `precision`), which is all
axq_mlperf.backends needs; a PyTorch int8 entry also has `load_model`, like any PyTorch model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from axq.errors import BuildError, ParameterError

if TYPE_CHECKING:
    from pathlib import Path

    from axq.entry import BuildContext, Entry, Params

SAMPLE_SHAPES = {"digits": (1, 8, 8), "fashion_mnist": (1, 28, 28), "imagenet": (3, 224, 224),
                 "digits_detection": (1, 64, 64)}
FILES = {"onnx": "model.onnx", "openvino": "model.xml", "pytorch": "model.pt2"}
RUNTIMES = {"onnx": "onnxruntime", "openvino": "openvino", "pytorch": "pytorch"}
CHECK_BATCH = 64
VALIDATION_SIZE = 500  # held-out training images a detector's accuracy-controlled quantization scores
CONTROLLED = ("digits_detection",)  # detectors NNCF quantizes with accuracy control (they have a training split)


# ----------------------------------------------------------------------------- resolve-time hooks


def source_query(params: dict) -> str:
    """Return the query of the PyTorch model this entry is made from."""
    query = f"model,model_name={params['model_name']},dataset_name={params['dataset_name']}"
    if params["dataset_name"] in ("imagenet", "coco"):
        query += f",weights_path={format_value(params['weights_path'])}"
    if params["dataset_name"] == "coco":
        query += f",image_size={coco_image_size(params)}"
    return query + data_dir(params)


def coco_image_size(params: Params) -> int:
    """Return a COCO detector's input side: the parameter, else the model's own."""
    from axq_mlperf import detectors

    return detectors.image_size(params["model_name"], params["image_size"])


def data_dir(params: dict) -> str:
    """Return `,fashion_mnist_dir=DIR` for a Fashion-MNIST model whose data come from a folder named, else ""."""
    from axq.query import format_value as query_value

    folder = params.get("fashion_mnist_dir")
    if folder is None or params["dataset_name"] != "fashion_mnist":
        return ""
    return f",fashion_mnist_dir={query_value(folder)}"


def format_value(value: Any) -> str:
    """Return a value as a query writes it (null for None)."""
    return "null" if value is None else str(value)


def converted_query(params: dict, format_: str) -> tuple[str, dict]:
    """Return the query and overrides of the fp32 model in format_ made from the same source."""
    same = {k: params[k] for k in ("model_name", "dataset_name", "weights_path", "fashion_mnist_dir", "image_size")}
    return "model,converted", {**same, "format": format_, "precision": "fp32"}


def source_deps(params: dict) -> dict:
    """Return the PyTorch model an ONNX export starts from."""
    return {"source": source_query(params)}


def onnx_deps(params: dict) -> dict:
    """Return the ONNX model an OpenVINO IR is converted from."""
    return {"onnx": converted_query(params, "onnx")}


def quantization_deps(params: dict) -> dict:
    """Return an int8 model's inputs: its fp32 model, the calibration images, the check set."""
    fp32 = source_query(params) if params["format"] == "pytorch" else converted_query(params, params["format"])
    return {"fp32": fp32, "calibration": calibration_query(params), "check": check_query(params)}


def calibration_query(params: dict) -> str | tuple[str, dict]:
    """Return the preprocessed calibration images: the training split, or ImageNet's calibration_dir."""
    name = params["dataset_name"]
    if name == "coco":
        return coco_query(params, params["calibration_dir"], None)
    if name != "imagenet":
        return f"dataset,preprocessed,{name},split=train" + data_dir(params)
    return imagenet_query(params, params["calibration_dir"], None)


def check_query(params: dict) -> str | tuple[str, dict]:
    """Return the held-out check set: the test split, or the first check_size ImageNet images."""
    name = params["dataset_name"]
    if name == "coco":
        return coco_query(params, params["coco_dir"], params["check_size"])
    if name != "imagenet":
        size = format_value(params["check_size"])
        return f"dataset,preprocessed,{name},split=test,dataset_size={size}" + data_dir(params)
    return imagenet_query(params, params["imagenet_dir"], params["check_size"])


def imagenet_query(params: dict, folder: str, size: int | None) -> tuple[str, dict]:
    """Return the query of a folder of ImageNet images preprocessed as the model's runs preprocess them."""
    from axq_mlperf.classifiers import preprocessed_query

    return preprocessed_query({"model_name": params["model_name"], "imagenet_dir": folder,
                               "loadgen_dataset_size": size})


def coco_query(params: dict, folder: str, size: int | None) -> tuple[str, dict]:
    """Return the query of a COCO-layout folder's images preprocessed as the detector's runs preprocess them."""
    return "dataset,preprocessed,coco", {"coco_dir": folder, "dataset_size": size,
                                         "image_size": coco_image_size(params)}


def sample_shape(params: Params) -> tuple[int, ...]:
    """Return one input sample's shape, C x H x W (ImageNet: the model's crop; COCO: its square input)."""
    if params["dataset_name"] == "coco":
        return 3, coco_image_size(params), coco_image_size(params)
    if params["dataset_name"] != "imagenet":
        return SAMPLE_SHAPES[params["dataset_name"]]
    from axq_mlperf.classifiers import preprocessing

    crop = preprocessing(params["model_name"])["image_crop"]
    return 3, crop, crop


def check_params(params: dict) -> None:
    """Raise ParameterError for an int8 ImageNet model without its calibration and check folders."""
    if params["dataset_name"] not in (*SAMPLE_SHAPES, "coco"):
        raise ParameterError("dataset_name", params["dataset_name"], "must be one of "
                             + ", ".join((*SAMPLE_SHAPES, "coco")))
    if params["precision"] != "int8" or params["dataset_name"] not in FOLDERS:
        return
    data, scored = FOLDERS[params["dataset_name"]]
    for name, what in (("calibration_dir", f"{data} images to calibrate on (never the scored ones)"),
                       (scored, f"the {data} folder whose images check accuracy")):
        if params.get(name) is None:
            raise ParameterError(f"int8 {data} models need {name}=FOLDER: {what}; "
                                 f"`axq set {name}=...` makes it a collection default")


FOLDERS = {"imagenet": ("ImageNet", "imagenet_dir"), "coco": ("COCO", "coco_dir")}  # an int8 model's data folders


EXPECTED_S = {"onnx": 15.0, "openvino": 5.0}


def expected_seconds(params: dict) -> float:
    """Return about how long the conversion or quantization takes here (seconds)."""
    if params["precision"] != "int8":
        return EXPECTED_S[params["format"]]
    return 60.0 if params["format"] == "pytorch" else 20.0


# ----------------------------------------------------------------------------- conversion


def export_onnx(ctx: BuildContext) -> dict:
    """Export the PyTorch model to ONNX with the dynamo exporter, batch dimension dynamic."""
    import torch

    model = ctx.deps["source"].call("load_model", "cpu")
    example = torch.zeros(2, *sample_shape(ctx.params))
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},),
                                input_names=["input"], output_names=["logits"], verbose=False)
    assert program is not None, "torch.onnx.export(dynamo=True) returns the ONNX program"
    program.save(str(ctx.path / FILES["onnx"]), external_data=False)
    ctx.log(f"onnx: exported {ctx.deps['source'].name}")
    return {"format": "onnx", "file": FILES["onnx"], "precision": "fp32", **carry(ctx, "source")}


def convert_openvino(ctx: BuildContext) -> dict:
    """Convert the ONNX model to OpenVINO IR, weights kept fp32."""
    import openvino as ov

    model = ov.convert_model(str(model_file(ctx.deps["onnx"])))
    ov.save_model(model, str(ctx.path / FILES["openvino"]), compress_to_fp16=False)
    ctx.log(f"openvino: converted {ctx.deps['onnx'].name}")
    return {"format": "openvino", "file": FILES["openvino"], "precision": "fp32", **carry(ctx, "onnx")}


def carry(ctx: BuildContext, source: str) -> dict:
    """Return what a model made from the dependency `source` keeps of it (a detector's post-processing), files too."""
    from axq_mlperf.detectors import carry as carry_postprocess

    return carry_postprocess(ctx.deps[source], ctx.path)


def model_file(entry: Entry) -> Any:
    """Return the path of a converted entry's model file."""
    return entry.path / entry.results["file"]


# ----------------------------------------------------------------------------- quantization


def quantize(ctx: BuildContext) -> dict:
    """Quantize the fp32 model to int8 on the calibration images, then check it keeps its accuracy."""
    format_ = ctx.params["format"]
    images = calibration_images(ctx)
    ctx.log(f"int8: calibrating {format_} on {len(images)} images of {ctx.deps['calibration'].name}")
    QUANTIZERS[format_](ctx, images)
    found = {"format": format_, "file": FILES[format_], "precision": "int8", "calibration_size": len(images),
             **carry(ctx, "fp32")}
    return {**found, **accuracy_check(ctx)}


def calibration_images(ctx: BuildContext) -> Any:
    """Return calibration_size images of the calibration set, a seeded choice (all if fewer)."""
    import numpy as np

    images, _ = ctx.deps["calibration"].call("load_arrays")
    size = min(ctx.params["calibration_size"], len(images))
    chosen = np.sort(np.random.default_rng(ctx.params["calibration_seed"]).permutation(len(images))[:size])
    return np.ascontiguousarray(images[chosen], dtype=np.float32)


def quantize_onnx(ctx: BuildContext, images: Any) -> None:
    """Quantize the ONNX model with ONNX Runtime's quantize_static: QDQ, per-channel 7-bit weights.

    reduce_range keeps weights in 7 bits: on x86 CPUs without VNNI (AVX2 only, e.g. older AMD
    EPYC) ONNX Runtime's u8s8 kernels sum pairs of products in int16 and saturate with 8-bit
    weights (the digits CNN kept 98.9% of fp32 there, 99.3%+ with VNNI). A model entry is no
    record of the machine it was built on, so it is quantized to run right on any of them.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = ctx.path / "prepared.onnx"
    quant_pre_process(str(model_file(ctx.deps["fp32"])), str(prepared))
    quantize_static(str(prepared), str(ctx.path / FILES["onnx"]), Batches(images, "input"),
                    quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    prepared.unlink()


class Batches:
    """ONNX Runtime's calibration reader: the images in batches of 16, as {input name: array}."""

    def __init__(self, images: Any, name: str) -> None:
        self.batches = iter([{name: images[i:i + 16]} for i in range(0, len(images), 16)])

    def get_next(self) -> dict | None:
        """Return the next batch, or None at the end."""
        return next(self.batches, None)


def quantize_openvino(ctx: BuildContext, images: Any) -> None:
    """Quantize the IR with NNCF's post-training quantization (min-max, per-channel weights).

    A detector is quantized with NNCF's accuracy control: its boxes' last pixel is what
    mAP@[.5:.95] scores, and plain min-max quantization of the digits detector kept 97% of
    its fp32 mAP. NNCF quantizes it (asymmetric activations, full bias correction), scores it
    on held-out training canvases and reverts to fp32 the operations that cost the most until
    it keeps all but a fifth of what accuracy_target allows (0.2% at 0.99): the digits
    detector keeps 99.1% on the test split with 2 of its 16 operations reverted. The check
    on the test split (accuracy_check) still decides.
    """
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(model_file(ctx.deps["fp32"])))
    batches = [images[i:i + 16] for i in range(0, len(images), 16)]
    if ctx.params["dataset_name"] not in CONTROLLED:
        quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches))  # items: batches
    else:
        quantized = quantize_with_control(ctx, model, batches)
    ov.save_model(quantized, str(ctx.path / FILES["openvino"]), compress_to_fp16=False)


def quantize_with_control(ctx: BuildContext, model: Any, batches: list[Any]) -> Any:
    """Return a detector quantized by NNCF's accuracy control, validated on held-out training images."""
    import nncf

    images, truth = validation_set(ctx)
    drop = (1 - ctx.params["accuracy_target"]) / 5

    def validate(compiled: Any, items: Any) -> float:
        import numpy as np

        from axq_mlperf.tasks import detection

        answers = np.concatenate([compiled(batch)[0] for batch in items])
        return float(detection.answers_map(answers, truth)["mAP"])

    checked = nncf.Dataset([images[i:i + 50] for i in range(0, len(images), 50)])
    return nncf.quantize_with_accuracy_control(
        model, calibration_dataset=nncf.Dataset(batches), validation_dataset=checked, validation_fn=validate,
        max_drop=drop, drop_type=nncf.DropType.RELATIVE, subset_size=len(batches),
        preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=False)


def validation_set(ctx: BuildContext) -> tuple[Any, Path]:
    """Return VALIDATION_SIZE training images not calibrated on, and the path of their COCO annotations."""
    import json

    import numpy as np

    from axq_mlperf import coco

    source = ctx.deps["calibration"]
    images, _ = source.call("load_arrays")
    order = np.random.default_rng(ctx.params["calibration_seed"]).permutation(len(images))
    chosen = np.sort(order[ctx.params["calibration_size"]:][:VALIDATION_SIZE])
    data = json.loads(coco.annotation_file(source.path, "val").read_text(encoding="utf-8"))
    folder = ctx.path / "validation"
    annotations = coco.write(folder, coco.pick(data, chosen.tolist()), "val")
    return np.ascontiguousarray(images[chosen], dtype=np.float32), annotations


def quantize_pytorch(ctx: BuildContext, images: Any) -> None:
    """Quantize with PT2E and the x86 inductor quantizer; save the converted program."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model = split_shared_relus(ctx.deps["fp32"].call("load_model", "cpu"))
    example = (torch.zeros(2, *images.shape[1:]),)  # two samples: a batch of 1 would fix the batch size
    dynamic = ({0: torch.export.Dim("batch", min=1)},)
    graph = torch.export.export(model, example, dynamic_shapes=dynamic).module()
    prepared = prepare_pt2e(graph, x86_quantizer())
    with torch.no_grad():
        for start in range(0, len(images), 16):
            prepared(torch.from_numpy(images[start:start + 16]))
    converted = convert_pt2e(prepared)
    torch.export.save(torch.export.export(converted, example, dynamic_shapes=dynamic), str(ctx.path / FILES["pytorch"]))


def x86_quantizer() -> Any:
    """Return the x86 inductor quantizer with its default static int8 configuration."""
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    return quantizer


def split_shared_relus(model: Any) -> Any:
    """Give each use of a ReLU module its own module (torchvision's residual blocks reuse one).

    The x86 quantizer annotates a module once: a ReLU called two or three times in a block
    would be fused with one convolution and leave the others unquantized (or be refused).
    """
    import copy

    import torch

    for module in list(model.modules()):
        forward = BLOCK_FORWARDS.get(type(module).__name__)
        if forward is not None and hasattr(module, "relu"):
            module.relus = torch.nn.ModuleList(copy.deepcopy(module.relu) for _ in range(3))
            module.forward = forward.__get__(module)
    return model


def bottleneck_forward(block: Any, x: Any) -> Any:
    """Run torchvision's Bottleneck with a ReLU module per use."""
    out = block.relus[0](block.bn1(block.conv1(x)))
    out = block.relus[1](block.bn2(block.conv2(out)))
    out = block.bn3(block.conv3(out))
    return block.relus[2](out + (x if block.downsample is None else block.downsample(x)))


def basic_block_forward(block: Any, x: Any) -> Any:
    """Run torchvision's BasicBlock with a ReLU module per use."""
    out = block.relus[0](block.bn1(block.conv1(x)))
    out = block.bn2(block.conv2(out))
    return block.relus[1](out + (x if block.downsample is None else block.downsample(x)))


BLOCK_FORWARDS = {"Bottleneck": bottleneck_forward, "BasicBlock": basic_block_forward}


QUANTIZERS = {"onnx": quantize_onnx, "openvino": quantize_openvino, "pytorch": quantize_pytorch}


def load_model(entry: Entry, device: str = "cpu") -> Any:
    """Return a PyTorch int8 entry's quantized module (for axq_mlperf.backends to compile)."""
    if entry.results["format"] != "pytorch":
        raise BuildError(f"{entry.name} is a {entry.results['format']} model, not a PyTorch one")
    return load_program(entry.path / FILES["pytorch"])


def load_program(path: Any) -> Any:
    """Return the module of a saved quantized program, torchao's quantized ops and inductor passes registered."""
    import torch
    import torchao.quantization.pt2e.quantize_pt2e  # the quantized ops the program calls
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401  (inductor's int8 fusions)

    return torch.export.load(str(path)).module()


# ----------------------------------------------------------------------------- accuracy check


def accuracy_check(ctx: BuildContext) -> dict:
    """Score the check set with the fp32 and the int8 model (the task's metric); raise if int8 keeps too little."""
    from axq_mlperf import tasks

    check, params = ctx.deps["check"], ctx.params
    images, labels = check.call("load_arrays")
    runtime, task = RUNTIMES[params["format"]], tasks.for_dataset(params["dataset_name"])
    fp32 = accuracy(open_model(ctx.deps["fp32"], runtime, "fp32", task), images, check, task)
    int8 = accuracy(open_model(built_model(ctx), runtime, "int8", task), images, check, task)
    ratio = int8 / fp32 if fp32 else 1.0
    metric = "mAP" if task == "object_detection" else "top-1"
    ctx.log(f"int8: {metric} {int8:.3f}% against fp32 {fp32:.3f}% on {len(labels)} check images ({ratio:.4f})")
    refuse_below_target(ratio, fp32, int8, params["accuracy_target"])
    return {"fp32_accuracy": fp32, "int8_accuracy": int8, "accuracy_ratio": round(ratio, 6),
            "check_size": len(labels), "accuracy_target": params["accuracy_target"]}


def refuse_below_target(ratio: float, fp32: float, int8: float, target: float) -> None:
    """Raise BuildError naming both accuracies when int8 keeps less than target of fp32."""
    if ratio < target:
        raise BuildError(f"int8 model keeps {ratio:.2%} of fp32 accuracy (int8 {int8:.3f}%, fp32 {fp32:.3f}%), "
                         f"below accuracy_target={target}; calibrate on more images (calibration_size=) "
                         f"or lower accuracy_target")


def built_model(ctx: BuildContext) -> Any:
    """Return the int8 model just written into the entry directory, as a backend opens it."""
    from axq_mlperf.backends import Model
    from axq_mlperf.detectors import postprocess_of

    path, postprocess = ctx.path / FILES[ctx.params["format"]], postprocess_of(ctx.deps["fp32"])
    if ctx.params["format"] == "pytorch":
        return Model("int8", load=lambda device: load_program(path), postprocess=postprocess)
    return Model("int8", file=path, postprocess=postprocess)


def open_model(entry: Any, runtime: str, precision: str, task: str = "image_classification") -> Any:
    """Return a backend of the runtime on the model entry (CPU, the runtime's default threads)."""
    from axq_mlperf.backends import Options, open_backend

    return open_backend(entry, Options(framework=runtime, precision=precision, batch_size=CHECK_BATCH, task=task))


def accuracy(backend: Any, images: Any, check: Entry, task: str) -> float:
    """Return the task's accuracy in percent of the backend's answers for the check set's images."""
    from axq_mlperf import tasks
    from axq_mlperf.backends import answer_all

    return float(tasks.get(task).score_answers(answer_all(backend, images, CHECK_BATCH), check)["accuracy"])
