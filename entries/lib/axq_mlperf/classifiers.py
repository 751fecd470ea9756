"""Torchvision's ImageNet classifiers: each one's reference preprocessing and weights file.

The table is static, so that checking a `model_name` at resolve time costs no torchvision
import (about a second); tests/test_models.py checks it against
`torchvision.models.list_models(module=torchvision.models)` and each model's weights
metadata (`weights.transforms()`): the DEFAULT weights of every model, except resnet50,
which keeps the MLPerf reference's preprocessing and weights (IMAGENET1K_V1: resize 256,
centre crop 224, bilinear).

`preprocessed_query(params)` is the query (and overrides) of the preprocessed ImageNet
entry a LoadGen run of `params["model_name"]` needs: two models with the same
preprocessing share one preprocessed entry.
"""

from __future__ import annotations

from typing import NamedTuple

NORMALISATIONS = {  # (mean, std) of the [0, 1] pixels, per channel
    "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "half": ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
}
WEIGHTS_URL = "https://download.pytorch.org/models/"
# Constructor arguments the published weights were trained with (torchvision sets them when
# it loads weights itself; a state_dict loaded by hand needs them too).
CONSTRUCTOR = {"googlenet": {"transform_input": True, "init_weights": False},
               "inception_v3": {"transform_input": True, "init_weights": False}}


class Classifier(NamedTuple):
    """One model's reference preprocessing and the file name of its weights."""

    resize: int  # the shorter side after an aspect-preserving resize
    crop: int  # the centre crop's side
    interpolation: str  # PIL resampling: bilinear or bicubic
    normalisation: str  # a key of NORMALISATIONS
    weights_file: str  # as torch's hub cache names it (and WEIGHTS_URL serves it)


MODELS = {
    "alexnet": Classifier(256, 224, "bilinear", "imagenet", "alexnet-owt-7be5be79.pth"),
    "convnext_base": Classifier(232, 224, "bilinear", "imagenet", "convnext_base-6075fbad.pth"),
    "convnext_large": Classifier(232, 224, "bilinear", "imagenet", "convnext_large-ea097f82.pth"),
    "convnext_small": Classifier(230, 224, "bilinear", "imagenet", "convnext_small-0c510722.pth"),
    "convnext_tiny": Classifier(236, 224, "bilinear", "imagenet", "convnext_tiny-983f1562.pth"),
    "densenet121": Classifier(256, 224, "bilinear", "imagenet", "densenet121-a639ec97.pth"),
    "densenet161": Classifier(256, 224, "bilinear", "imagenet", "densenet161-8d451a50.pth"),
    "densenet169": Classifier(256, 224, "bilinear", "imagenet", "densenet169-b2777c0a.pth"),
    "densenet201": Classifier(256, 224, "bilinear", "imagenet", "densenet201-c1103571.pth"),
    "efficientnet_b0": Classifier(256, 224, "bicubic", "imagenet", "efficientnet_b0_rwightman-7f5810bc.pth"),
    "efficientnet_b1": Classifier(255, 240, "bilinear", "imagenet", "efficientnet_b1-c27df63c.pth"),
    "efficientnet_b2": Classifier(288, 288, "bicubic", "imagenet", "efficientnet_b2_rwightman-c35c1473.pth"),
    "efficientnet_b3": Classifier(320, 300, "bicubic", "imagenet", "efficientnet_b3_rwightman-b3899882.pth"),
    "efficientnet_b4": Classifier(384, 380, "bicubic", "imagenet", "efficientnet_b4_rwightman-23ab8bcd.pth"),
    "efficientnet_b5": Classifier(456, 456, "bicubic", "imagenet", "efficientnet_b5_lukemelas-1a07897c.pth"),
    "efficientnet_b6": Classifier(528, 528, "bicubic", "imagenet", "efficientnet_b6_lukemelas-24a108a5.pth"),
    "efficientnet_b7": Classifier(600, 600, "bicubic", "imagenet", "efficientnet_b7_lukemelas-c5b4e57e.pth"),
    "efficientnet_v2_l": Classifier(480, 480, "bicubic", "half", "efficientnet_v2_l-59c71312.pth"),
    "efficientnet_v2_m": Classifier(480, 480, "bilinear", "imagenet", "efficientnet_v2_m-dc08266a.pth"),
    "efficientnet_v2_s": Classifier(384, 384, "bilinear", "imagenet", "efficientnet_v2_s-dd5fe13b.pth"),
    "googlenet": Classifier(256, 224, "bilinear", "imagenet", "googlenet-1378be20.pth"),
    "inception_v3": Classifier(342, 299, "bilinear", "imagenet", "inception_v3_google-0cc3c7bd.pth"),
    "maxvit_t": Classifier(224, 224, "bicubic", "imagenet", "maxvit_t-bc5ab103.pth"),
    "mnasnet0_5": Classifier(256, 224, "bilinear", "imagenet", "mnasnet0.5_top1_67.823-3ffadce67e.pth"),
    "mnasnet0_75": Classifier(232, 224, "bilinear", "imagenet", "mnasnet0_75-7090bc5f.pth"),
    "mnasnet1_0": Classifier(256, 224, "bilinear", "imagenet", "mnasnet1.0_top1_73.512-f206786ef8.pth"),
    "mnasnet1_3": Classifier(232, 224, "bilinear", "imagenet", "mnasnet1_3-a4c69d6f.pth"),
    "mobilenet_v2": Classifier(232, 224, "bilinear", "imagenet", "mobilenet_v2-7ebf99e0.pth"),
    "mobilenet_v3_large": Classifier(232, 224, "bilinear", "imagenet", "mobilenet_v3_large-5c1a4163.pth"),
    "mobilenet_v3_small": Classifier(256, 224, "bilinear", "imagenet", "mobilenet_v3_small-047dcff4.pth"),
    "regnet_x_16gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_x_16gf-ba3796d7.pth"),
    "regnet_x_1_6gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_x_1_6gf-a12f2b72.pth"),
    "regnet_x_32gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_x_32gf-6eb8fdc6.pth"),
    "regnet_x_3_2gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_x_3_2gf-7071aa85.pth"),
    "regnet_x_400mf": Classifier(232, 224, "bilinear", "imagenet", "regnet_x_400mf-62229a5f.pth"),
    "regnet_x_800mf": Classifier(232, 224, "bilinear", "imagenet", "regnet_x_800mf-94a99ebd.pth"),
    "regnet_x_8gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_x_8gf-2b70d774.pth"),
    "regnet_y_128gf": Classifier(384, 384, "bicubic", "imagenet", "regnet_y_128gf_swag-c8ce3e52.pth"),
    "regnet_y_16gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_y_16gf-3e4a00f9.pth"),
    "regnet_y_1_6gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_y_1_6gf-0d7bc02a.pth"),
    "regnet_y_32gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_y_32gf-8db6d4b5.pth"),
    "regnet_y_3_2gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_y_3_2gf-9180c971.pth"),
    "regnet_y_400mf": Classifier(232, 224, "bilinear", "imagenet", "regnet_y_400mf-e6988f5f.pth"),
    "regnet_y_800mf": Classifier(232, 224, "bilinear", "imagenet", "regnet_y_800mf-58fc7688.pth"),
    "regnet_y_8gf": Classifier(232, 224, "bilinear", "imagenet", "regnet_y_8gf-dc2b1b54.pth"),
    "resnet101": Classifier(232, 224, "bilinear", "imagenet", "resnet101-cd907fc2.pth"),
    "resnet152": Classifier(232, 224, "bilinear", "imagenet", "resnet152-f82ba261.pth"),
    "resnet18": Classifier(256, 224, "bilinear", "imagenet", "resnet18-f37072fd.pth"),
    "resnet34": Classifier(256, 224, "bilinear", "imagenet", "resnet34-b627a593.pth"),
    "resnet50": Classifier(256, 224, "bilinear", "imagenet", "resnet50-0676ba61.pth"),
    "resnext101_32x8d": Classifier(232, 224, "bilinear", "imagenet", "resnext101_32x8d-110c445d.pth"),
    "resnext101_64x4d": Classifier(232, 224, "bilinear", "imagenet", "resnext101_64x4d-173b62eb.pth"),
    "resnext50_32x4d": Classifier(232, 224, "bilinear", "imagenet", "resnext50_32x4d-1a0047aa.pth"),
    "shufflenet_v2_x0_5": Classifier(256, 224, "bilinear", "imagenet", "shufflenetv2_x0.5-f707e7126e.pth"),
    "shufflenet_v2_x1_0": Classifier(256, 224, "bilinear", "imagenet", "shufflenetv2_x1-5666bf0f80.pth"),
    "shufflenet_v2_x1_5": Classifier(232, 224, "bilinear", "imagenet", "shufflenetv2_x1_5-3c479a10.pth"),
    "shufflenet_v2_x2_0": Classifier(232, 224, "bilinear", "imagenet", "shufflenetv2_x2_0-8be3c8ee.pth"),
    "squeezenet1_0": Classifier(256, 224, "bilinear", "imagenet", "squeezenet1_0-b66bff10.pth"),
    "squeezenet1_1": Classifier(256, 224, "bilinear", "imagenet", "squeezenet1_1-b8a52dc0.pth"),
    "swin_b": Classifier(238, 224, "bicubic", "imagenet", "swin_b-68c6b09e.pth"),
    "swin_s": Classifier(246, 224, "bicubic", "imagenet", "swin_s-5e29d889.pth"),
    "swin_t": Classifier(232, 224, "bicubic", "imagenet", "swin_t-704ceda3.pth"),
    "swin_v2_b": Classifier(272, 256, "bicubic", "imagenet", "swin_v2_b-781e5279.pth"),
    "swin_v2_s": Classifier(260, 256, "bicubic", "imagenet", "swin_v2_s-637d8ceb.pth"),
    "swin_v2_t": Classifier(260, 256, "bicubic", "imagenet", "swin_v2_t-b137f0e2.pth"),
    "vgg11": Classifier(256, 224, "bilinear", "imagenet", "vgg11-8a719046.pth"),
    "vgg11_bn": Classifier(256, 224, "bilinear", "imagenet", "vgg11_bn-6002323d.pth"),
    "vgg13": Classifier(256, 224, "bilinear", "imagenet", "vgg13-19584684.pth"),
    "vgg13_bn": Classifier(256, 224, "bilinear", "imagenet", "vgg13_bn-abd245e5.pth"),
    "vgg16": Classifier(256, 224, "bilinear", "imagenet", "vgg16-397923af.pth"),
    "vgg16_bn": Classifier(256, 224, "bilinear", "imagenet", "vgg16_bn-6c64b313.pth"),
    "vgg19": Classifier(256, 224, "bilinear", "imagenet", "vgg19-dcbb9e9d.pth"),
    "vgg19_bn": Classifier(256, 224, "bilinear", "imagenet", "vgg19_bn-c79401a0.pth"),
    "vit_b_16": Classifier(256, 224, "bilinear", "imagenet", "vit_b_16-c867db91.pth"),
    "vit_b_32": Classifier(256, 224, "bilinear", "imagenet", "vit_b_32-d86f8d99.pth"),
    "vit_h_14": Classifier(518, 518, "bicubic", "imagenet", "vit_h_14_swag-80465313.pth"),
    "vit_l_16": Classifier(242, 224, "bilinear", "imagenet", "vit_l_16-852ce7e3.pth"),
    "vit_l_32": Classifier(256, 224, "bilinear", "imagenet", "vit_l_32-c7638314.pth"),
    "wide_resnet101_2": Classifier(232, 224, "bilinear", "imagenet", "wide_resnet101_2-d733dc28.pth"),
    "wide_resnet50_2": Classifier(232, 224, "bilinear", "imagenet", "wide_resnet50_2-9ba9bcbe.pth"),
}


def check_model_name(name: str) -> None:
    """Raise ParameterError unless `name` is one of torchvision's image classification models."""
    from axq.errors import ParameterError, did_you_mean

    if name not in MODELS:
        raise ParameterError("model_name", name, "is not a torchvision image classification model"
                             + did_you_mean(str(name), MODELS))


def preprocessing(model_name: str) -> dict:
    """Return the preprocessed entry's parameters for a model: resize, crop, interpolation, mean, std."""
    found = MODELS[model_name]
    mean, std = NORMALISATIONS[found.normalisation]
    return {"image_resize": found.resize, "image_crop": found.crop, "image_interpolation": found.interpolation,
            "image_mean": mean, "image_std": std}


def preprocessed_query(params: dict) -> tuple[str, dict]:
    """Return the query and overrides of the preprocessed ImageNet entry a run of params needs."""
    check_model_name(params["model_name"])
    return ("dataset,preprocessed,imagenet", {"dataset_size": params["loadgen_dataset_size"],
                                               "imagenet_dir": params["imagenet_dir"],
                                               **preprocessing(params["model_name"])})
