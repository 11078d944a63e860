"""torch tensors and modules: values to safetensors, architecture to JSON.

A module is saved as its ``state_dict`` plus a spec of how to build an empty copy:
``Sequential``/``ModuleList``/``ModuleDict`` record their children; any other class of
``torch.nn`` records the constructor arguments read back from its attributes, kept only
if a copy built from them (on the meta device, so nothing is allocated) prints the same
``repr``. Anything else, e.g. a user's own ``nn.Module`` subclass, whose ``forward``
is code, is recorded by class and attribute path; ``load(path, modules=...)`` supplies a
fresh instance and the saved weights go into it.
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import LoadError, TransferkitError
from ._codec import TAG, Decoder, Encoder, decode_plain, encode_plain, is_plain, lookup

_NATIVE = {torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
           torch.float16, torch.float32, torch.float64}
_CONTAINERS = {c.__name__: c for c in (nn.Sequential, nn.ModuleList, nn.ModuleDict)}


# ---------------------------------------------------------------------------- tensors
def _store(enc: Encoder, t: torch.Tensor, path: str) -> dict[str, Any]:
    t = t.detach().cpu()
    if t.layout != torch.strided or t.is_quantized:
        raise TransferkitError(f"cannot save the tensor at {path!r}: only dense tensors are "
                               "supported (convert sparse/quantized tensors first).")
    t = t.resolve_conj().resolve_neg().contiguous()
    node: dict[str, Any] = {"torch_dtype": str(t.dtype).removeprefix("torch."),
                            "shape": list(t.shape)}
    if t.dtype in _NATIVE:
        arr = t.numpy()
    else:  # bfloat16, complex, float8...: NumPy lacks them, so keep the raw bytes
        arr = t.reshape(-1).view(torch.uint8).numpy()
        node["raw"] = True
    node["key"] = key = enc.array_key(path)
    enc.arrays[key] = arr
    return node


def _torch_dtype(name: Any) -> torch.dtype:
    dt = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dt, torch.dtype):
        raise LoadError(f"config.json names an unknown torch dtype {name!r}.")
    return dt


def _restore(dec: Decoder, node: dict[str, Any]) -> torch.Tensor:
    key = node["key"]
    if key not in dec.arrays:
        raise LoadError(f"tensors.safetensors lacks the tensor {key!r}; the folder is "
                        "incomplete or was edited.")
    dt = _torch_dtype(node["torch_dtype"])
    t = torch.from_numpy(np.array(dec.arrays[key], copy=True))
    if node.get("raw"):
        t = t.view(dt)
    if t.dtype != dt:
        raise LoadError(f"tensor {key!r} has dtype {t.dtype}, config.json says {dt}.")
    return t.reshape(node["shape"])


def encode_tensor(enc: Encoder, t: torch.Tensor, path: str) -> dict[str, Any]:
    return {TAG: "torch.tensor", **_store(enc, t, path), "requires_grad": t.requires_grad,
            "parameter": isinstance(t, nn.Parameter)}


# ---------------------------------------------------------------------------- modules
def _is_standard(cls: type) -> bool:
    return cls.__module__.startswith("torch.nn.modules.") and getattr(
        nn, cls.__name__, None) is cls


def _constructor_args(m: nn.Module) -> dict[str, Any] | None:
    """Arguments that rebuild ``m`` (weights aside), or None if they cannot be read."""
    cls = type(m)
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    args: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("device", "dtype") or (
                p.name.startswith("_")):
            continue
        if not hasattr(m, p.name):
            if p.default is p.empty:
                return None
            continue  # left at its default; the repr check below catches a wrong guess
        value = getattr(m, p.name)
        if isinstance(p.default, bool) and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # e.g. Linear(bias=...) stores a Parameter or None
        if not is_plain(value):
            return None
        args[p.name] = value
    try:
        with torch.device("meta"):
            rebuilt = cls(**args)
    except Exception:
        return None
    return args if repr(rebuilt) == repr(m) else None


def _spec(m: nn.Module, path: str) -> dict[str, Any]:
    cls = type(m)
    if _CONTAINERS.get(cls.__name__) is cls:
        return {"torch": cls.__name__,
                "children": [[name, _spec(child, f"{path}.{name}")]
                             for name, child in m.named_children()]}
    if _is_standard(cls):
        args = _constructor_args(m)
        if args is not None:
            return {"torch": cls.__name__, "args": {k: encode_plain(v) for k, v in args.items()}}
    return {"custom": f"{cls.__module__}:{cls.__qualname__}", "path": path}


def encode_module(enc: Encoder, m: nn.Module, path: str) -> dict[str, Any]:
    return {
        TAG: "torch.module",
        "spec": _spec(m, path),
        "tensors": {name: _store(enc, t, f"{path}:{name}")
                    for name, t in m.state_dict(keep_vars=True).items()},
        # Fine-tuning freezes layers and eval() switches dropout/batch-norm: keep both.
        "frozen": [name for name, p in m.named_parameters() if not p.requires_grad],
        "training": [name for name, sub in m.named_modules() if sub.training],
    }


def _build(dec: Decoder, spec: dict[str, Any]) -> nn.Module:
    if "custom" in spec:
        given = lookup(dec.modules, spec["path"], spec["custom"])
        if not isinstance(given, nn.Module):
            raise LoadError(f"modules[{spec['path']!r}] must be a torch.nn.Module instance "
                            f"of {spec['custom']}, got {type(given).__name__}.")
        return copy.deepcopy(given)  # never fill (or share) the caller's instance
    cls = getattr(nn, str(spec["torch"]), None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and (
            _is_standard(cls) or _CONTAINERS.get(cls.__name__) is cls)):
        raise LoadError(f"config.json names {spec['torch']!r}, which is not a torch.nn layer.")
    if "children" in spec:
        children = OrderedDict((str(n), _build(dec, c)) for n, c in spec["children"])
        if cls is nn.ModuleList:
            return nn.ModuleList(children.values())
        return cls(children)
    args = {str(k): decode_plain(v) for k, v in spec["args"].items()}
    try:
        return cls(**args)
    except Exception as exc:
        raise LoadError(f"cannot rebuild torch.nn.{cls.__name__}(**{args}): {exc}") from exc


def decode(dec: Decoder, node: dict[str, Any], path: str) -> Any:
    tag = node[TAG]
    if tag == "torch.tensor":
        t = _restore(dec, node)
        if node.get("parameter"):
            return nn.Parameter(t, requires_grad=bool(node["requires_grad"]))
        return t.requires_grad_(bool(node["requires_grad"]))
    if tag == "torch.dtype":
        return _torch_dtype(node["value"])
    if tag == "torch.device":
        return torch.device(str(node["value"]))
    if tag != "torch.module":
        raise LoadError(f"config.json holds an unknown value type {tag!r}.")
    module = _build(dec, node["spec"])
    state = {name: _restore(dec, t) for name, t in node["tensors"].items()}
    try:
        # assign=True keeps the saved dtypes (a float64 network stays float64).
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise LoadError(f"the saved weights of {path or 'the model'!r} do not fit the module "
                        f"rebuilt for it ({type(module).__name__}): {exc}") from exc
    frozen, training = set(node["frozen"]), set(node["training"])
    for name, p in module.named_parameters():
        p.requires_grad_(name not in frozen)
    for name, sub in module.named_modules():
        sub.training = name in training
    return module
