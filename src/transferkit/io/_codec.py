"""The object tree of a model <-> a JSON tree plus named arrays plus skops blobs.

Every value becomes a JSON value: plain ``None``/bool/int/str/finite float as is, a
list as a JSON list, anything else as a JSON object tagged with ``"$type"``. Numeric
arrays and tensors go to the safetensors file under a key (their attribute path), and
objects only skops can describe (scikit-learn estimators, random states, ...) to
``objects/*.skops``. An object met a second time is written as a reference to the path
where it was first met, so shared objects stay shared and cycles through transferkit
objects survive.
"""

from __future__ import annotations

import base64
import importlib
import io as _io
import math
import sys
import types
import warnings
from typing import Any

import numpy as np

from ..errors import LoadError, TransferkitError
from . import _trust

TAG = "$type"
_PRIMITIVES = (type(None), bool, int, str)
# dtypes safetensors stores natively; any other fixed-size dtype travels as raw bytes.
_SAFETENSORS_DTYPES = {np.dtype(t) for t in ("bool", "int8", "int16", "int32", "int64",
                                              "uint8", "uint16", "uint32", "uint64",
                                              "float16", "float32", "float64")}
# numpy scalars whose ``item()`` is exact (long double would lose digits).
_JSON_FLOATS = {np.dtype(t) for t in ("float16", "float32", "float64", "complex64",
                                      "complex128")}
_FUNCTIONS = (types.FunctionType, types.MethodType, types.BuiltinFunctionType)
_BUILTIN_TYPES = {t.__name__: t for t in (int, float, complex, bool, str, bytes, object,
                                          list, tuple, dict, set, frozenset)}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return f"attribute {path!r}" if path else "the model itself"


def is_transferkit_class(cls: type) -> bool:
    mod = getattr(cls, "__module__", None) or ""
    return mod == "transferkit" or mod.startswith("transferkit.")


def encode_float(x: float) -> Any:
    # Strict JSON has no NaN/inf; tag them instead of relying on Python's extension.
    return x if math.isfinite(x) else {TAG: "float", "value": repr(x)}


def encode_plain(v: Any) -> Any:
    """JSON for nested tuples/lists of scalars (torch constructor arguments)."""
    if type(v) is float:
        return encode_float(v)
    if type(v) in (tuple, list):
        items = [encode_plain(x) for x in v]
        return {TAG: "tuple", "items": items} if type(v) is tuple else items
    return v


def decode_plain(v: Any) -> Any:
    if isinstance(v, list):
        return [decode_plain(x) for x in v]
    if isinstance(v, dict):
        if v.get(TAG) == "tuple":
            return tuple(decode_plain(x) for x in v["items"])
        if v.get(TAG) == "float":
            return float(v["value"])
        raise LoadError(f"config.json holds an unexpected value {v!r} in a layer's arguments.")
    return v


def is_plain(v: Any) -> bool:
    if type(v) in (*_PRIMITIVES, float):
        return True
    return type(v) in (tuple, list) and all(is_plain(x) for x in v)


class Encoder:
    """Walks a model; collects ``arrays`` (for safetensors) and ``blobs`` (skops files)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.blobs: dict[str, bytes] = {}
        self._memo: dict[int, str] = {}
        self._keep: list[Any] = []  # holds temporaries alive so their ids are not reused
        self._active: set[int] = set()

    # ------------------------------------------------------------------ helpers
    def array_key(self, path: str) -> str:
        key, n = path or "<root>", 1
        while key in self.arrays:  # only for odd dict keys whose reprs collide
            key, n = f"{path}#{n}", n + 1
        return key

    def add_array(self, path: str, arr: np.ndarray) -> dict[str, Any]:
        """Store a numeric array; dtypes safetensors lacks (complex, datetime, big-endian...)
        go as their raw bytes, viewed back on load."""
        node: dict[str, Any] = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
        if arr.dtype not in _SAFETENSORS_DTYPES or not arr.dtype.isnative:
            arr = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
            node["raw"] = True
        key = self.array_key(path)
        self.arrays[key] = np.ascontiguousarray(arr)
        node["key"] = key
        return node

    # ------------------------------------------------------------------ walk
    def encode(self, obj: Any, path: str = "") -> Any:
        t = type(obj)
        if t in _PRIMITIVES:
            return obj
        if t is float:
            return encode_float(obj)
        oid = id(obj)
        if oid in self._memo:
            return {TAG: "ref", "path": self._memo[oid]}
        if oid in self._active:
            raise TransferkitError(
                f"cannot save: {_where(path)} refers back to an object that contains it "
                "(a reference cycle); only transferkit objects may be part of a cycle."
            )
        self._active.add(oid)
        try:
            out = self._encode(obj, path)
        finally:
            self._active.discard(oid)
        self._memo[oid] = path
        self._keep.append(obj)
        return out

    def _encode(self, obj: Any, path: str) -> Any:
        t = type(obj)
        if t is list:
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if t in (tuple, set, frozenset):
            items = obj if t is tuple else sorted(obj, key=repr)  # sets: stable file content
            return {TAG: t.__name__, "items": [self.encode(v, f"{path}[{i}]")
                                               for i, v in enumerate(items)]}
        if t is dict:
            if all(type(k) is str for k in obj):
                return {TAG: "dict", "items": {k: self.encode(v, f"{path}[{k!r}]")
                                               for k, v in obj.items()}}
            return {TAG: "dict", "pairs": [[self.encode(k, f"{path}<key{i}>"),
                                            self.encode(v, f"{path}[{k!r}]")]
                                           for i, (k, v) in enumerate(obj.items())]}
        if t is complex:
            return {TAG: "complex", "real": encode_float(obj.real),
                    "imag": encode_float(obj.imag)}
        if t is bytes:
            return {TAG: "bytes", "base64": base64.b64encode(obj).decode("ascii")}
        if t is np.ndarray:
            return self._encode_ndarray(obj, path)
        if isinstance(obj, np.generic):
            if obj.dtype.kind in "biuUS" or obj.dtype in _JSON_FLOATS:
                return {TAG: "npscalar", "dtype": obj.dtype.str,
                        "value": self.encode(obj.item(), path)}
            return {TAG: "npscalar", "array": self._encode_ndarray(np.asarray(obj), path)}
        if t is np.dtype:
            if obj.fields is not None or obj.subdtype is not None:
                raise TransferkitError(f"cannot save {_where(path)}: structured dtype {obj}.")
            return {TAG: "dtype", "value": obj.str}
        if isinstance(obj, type) and issubclass(obj, np.generic):
            return {TAG: "type", "numpy": np.dtype(obj).str}
        if isinstance(obj, type) and _BUILTIN_TYPES.get(obj.__name__) is obj:
            return {TAG: "type", "builtin": obj.__name__}
        torch = sys.modules.get("torch")
        if torch is not None:
            from . import _torch

            if isinstance(obj, torch.nn.Module):
                return _torch.encode_module(self, obj, path)
            if isinstance(obj, torch.Tensor):
                return _torch.encode_tensor(self, obj, path)
            if isinstance(obj, (torch.dtype, torch.device)):
                return {TAG: f"torch.{type(obj).__name__}",
                        "value": str(obj).removeprefix("torch.")}
        if is_transferkit_class(t) and not isinstance(obj, type):
            return self._encode_transferkit(obj, path)
        return self._encode_skops(obj, path)

    def _encode_ndarray(self, arr: np.ndarray, path: str) -> dict[str, Any]:
        kind = arr.dtype.kind
        if kind in "biufcmM":
            return {TAG: "ndarray", **self.add_array(path, arr)}
        if kind in "USO":
            # Labels and mixed objects: one JSON value per element, restored in order.
            flat = arr.reshape(-1)
            items = [self.encode(v if kind == "O" else v.item(), f"{path}[{i}]")
                     for i, v in enumerate(flat)]
            return {TAG: "ndarray", "dtype": arr.dtype.str, "shape": list(arr.shape),
                    "items": items}
        raise TransferkitError(
            f"cannot save {_where(path)}: arrays of dtype {arr.dtype} are not supported."
        )

    def _encode_transferkit(self, obj: Any, path: str) -> dict[str, Any]:
        cls = type(obj)
        name = f"{cls.__module__}:{cls.__qualname__}"
        if "<" in cls.__qualname__:
            raise TransferkitError(f"cannot save {_where(path)}: {name} is a local class.")
        if isinstance(obj, tuple) and hasattr(cls, "_fields"):  # NamedTuple
            return {TAG: "namedtuple", "class": name,
                    "items": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]}
        if not hasattr(obj, "__dict__"):
            raise TransferkitError(f"cannot save {_where(path)}: {name} has no __dict__.")
        # Registered before its state so that attributes may point back at it.
        self._memo[id(obj)] = path
        self._keep.append(obj)
        state = vars(obj)
        get_params = getattr(obj, "get_params", None)
        names = set(get_params(deep=False)) if callable(get_params) else set()
        node: dict[str, Any] = {TAG: "object", "class": name, "params": {}, "state": {}}
        for key, value in state.items():
            section = "params" if key in names else "state"
            node[section][key] = self.encode(value, _join(path, key))
        return node

    def _encode_skops(self, obj: Any, path: str) -> dict[str, Any]:
        what = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if isinstance(obj, (types.ModuleType, _io.IOBase, types.GeneratorType)) or (
                isinstance(obj, _FUNCTIONS) and "<" in getattr(obj, "__qualname__", "<")):
            raise TransferkitError(
                f"cannot save {_where(path)}: it holds {obj!r} ({what}), which cannot be "
                "written as data. Lambdas, local functions, open files and modules cannot "
                "be saved; use a function defined in an importable module, or a string "
                "option, or drop the attribute before saving."
            )
        import skops.io as sio

        try:
            data = sio.dumps(obj)
            names = sio.get_untrusted_types(data=data)
        except Exception as exc:
            hint = ("; it holds a torch network, and torch networks inside scikit-learn "
                    "objects (e.g. a Pipeline) are not supported yet: use the TorchEstimator "
                    "directly as the estimator" if _holds_torch(obj) else "")
            raise TransferkitError(
                f"cannot save {_where(path)} ({what}) with skops: {exc}{hint}."
            ) from exc
        torchy = [n for n in names if n.split(".")[0] == "torch"]
        if torchy:
            raise TransferkitError(
                f"cannot save {_where(path)}: the {what} holds torch objects "
                f"({', '.join(torchy)}); torch networks inside "
                "scikit-learn objects (e.g. a Pipeline) are not supported yet. Use the "
                "TorchEstimator directly as the estimator."
            )
        bad = [n for n in names if "<" in n]
        if bad:
            raise TransferkitError(
                f"cannot save {_where(path)}: the {what} refers to {', '.join(bad)}, which "
                "cannot be found again when loading (a lambda or local object); define it "
                "in an importable module."
            )
        refused = _trust.refused(data, names)
        if refused:
            warnings.warn(
                f"{_where(path)} ({what}) holds types that transferkit.io.load refuses by "
                f"default: {', '.join(refused)}. Loading will need trusted={refused!r}.",
                UserWarning, stacklevel=4,
            )
        name = f"objects/{len(self.blobs):03d}.skops"
        self.blobs[name] = data
        return {TAG: "skops", "file": name, "class": what}


def _holds_torch(obj: Any, depth: int = 8) -> bool:
    """Whether a torch tensor or module hides in ``obj``'s attributes or containers."""
    torch = sys.modules.get("torch")
    if torch is None or depth == 0:
        return False
    if isinstance(obj, (torch.Tensor, torch.nn.Module)):
        return True
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    else:
        children = list(getattr(obj, "__dict__", {}).values())
    return any(_holds_torch(c, depth - 1) for c in children)


class Decoder:
    """Rebuilds the object tree written by :class:`Encoder`."""

    def __init__(self, arrays: dict[str, np.ndarray], blobs: dict[str, bytes],
                 modules: dict[str, Any] | None, trusted: list[str] | None) -> None:
        self.arrays = arrays
        self.blobs = blobs
        self.modules = dict(modules or {})
        self.trusted = list(trusted or [])
        self.done: dict[str, Any] = {}

    def array(self, node: dict[str, Any]) -> np.ndarray:
        key = node["key"]
        if key not in self.arrays:
            raise LoadError(f"tensors.safetensors lacks the array {key!r}; the folder is "
                            "incomplete or was edited.")
        arr, dtype, shape = self.arrays[key], np.dtype(node["dtype"]), tuple(node["shape"])
        if node.get("raw"):
            arr = np.ascontiguousarray(arr).view(dtype)
        elif arr.dtype != dtype:
            raise LoadError(f"array {key!r} has dtype {arr.dtype}, config.json says {dtype}.")
        return arr.reshape(shape).copy()  # own, writable memory

    def decode(self, node: Any, path: str = "") -> Any:
        if node is None or type(node) in (bool, int, str, float):
            return node
        if isinstance(node, list):
            out: Any = [self.decode(v, f"{path}[{i}]") for i, v in enumerate(node)]
        elif not isinstance(node, dict) or not isinstance(node.get(TAG), str):
            raise LoadError(f"config.json is malformed at {_where(path)}: {node!r:.80}")
        elif node[TAG] == "ref":
            if node["path"] not in self.done:
                raise LoadError(f"config.json refers to {node['path']!r}, which it does not "
                                "define before; the file was edited or is corrupt.")
            return self.done[node["path"]]
        else:
            out = self._decode(node, path)
        self.done[path] = out
        return out

    def _decode(self, node: dict[str, Any], path: str) -> Any:
        tag = node[TAG]
        if tag == "float":
            return float(node["value"])
        if tag in ("tuple", "set", "frozenset"):
            items = [self.decode(v, f"{path}[{i}]") for i, v in enumerate(node["items"])]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        if tag == "dict":
            if "items" in node:
                return {k: self.decode(v, f"{path}[{k!r}]") for k, v in node["items"].items()}
            out = {}
            for i, (k, v) in enumerate(node["pairs"]):
                key = self.decode(k, f"{path}<key{i}>")
                out[key] = self.decode(v, f"{path}[{key!r}]")
            return out
        if tag == "complex":
            return complex(decode_plain(node["real"]), decode_plain(node["imag"]))
        if tag == "bytes":
            return base64.b64decode(node["base64"], validate=True)
        if tag == "ndarray":
            if "key" in node:
                return self.array(node)
            items = node["items"]
            flat = np.empty(len(items), dtype=object)
            for i, v in enumerate(items):
                flat[i] = self.decode(v, f"{path}[{i}]")
            dtype = np.dtype(node["dtype"])
            return (flat if dtype.kind == "O" else flat.astype(dtype)).reshape(node["shape"])
        if tag == "npscalar":
            if "array" in node:
                return self._decode(node["array"], path)[()]
            return np.dtype(node["dtype"]).type(self.decode(node["value"], path))
        if tag == "dtype":
            return np.dtype(node["value"])
        if tag == "type":
            if "numpy" in node:
                return np.dtype(node["numpy"]).type
            return _BUILTIN_TYPES[node["builtin"]]
        if tag.startswith("torch."):
            from . import _torch

            return _torch.decode(self, node, path)
        if tag == "object":
            cls = import_transferkit_class(node["class"])
            obj = cls.__new__(cls)
            self.done[path] = obj  # before the state: attributes may refer back to it
            attrs = {}
            for section in ("params", "state"):
                for key, value in node[section].items():
                    attrs[key] = self.decode(value, _join(path, key))
            obj.__dict__.update(attrs)
            return obj
        if tag == "namedtuple":
            cls = import_transferkit_class(node["class"])
            return cls(*[self.decode(v, f"{path}[{i}]") for i, v in enumerate(node["items"])])
        if tag == "skops":
            return self._decode_skops(node, path)
        raise LoadError(f"config.json holds an unknown value type {tag!r} at {_where(path)}; "
                        "it was written by a newer transferkit or edited.")

    def _decode_skops(self, node: dict[str, Any], path: str) -> Any:
        name = node["file"]
        if name not in self.blobs:
            raise LoadError(f"{name} is missing from the saved folder (needed for "
                            f"{_where(path)}).")
        import skops.io as sio

        data = self.blobs[name]
        try:
            names = sio.get_untrusted_types(data=data)
        except Exception as exc:
            raise LoadError(f"{name} is not a readable skops file: {exc}") from exc
        refused = [n for n in _trust.refused(data, names) if n not in self.trusted]
        if refused:
            raise LoadError(
                f"{name} ({_where(path)}) holds types transferkit does not trust: "
                f"{', '.join(refused)}. Nothing was loaded. Only classes from scikit-learn, "
                "NumPy, SciPy, transferkit and Python's builtins/collections are trusted; if "
                "you know where this folder comes from, pass "
                f"transferkit.io.load(path, trusted={refused!r})."
            )
        try:
            return sio.loads(data, trusted=names)
        except Exception as exc:
            raise LoadError(f"{name} ({_where(path)}) could not be loaded: {exc}") from exc


def custom_modules(tree: Any) -> list[tuple[str, str]]:
    """(attribute path, class) of every module the folder cannot rebuild by itself."""
    out: list[tuple[str, str]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get(TAG) == "torch.module":
                specs = [node.get("spec")]
                while specs:
                    spec = specs.pop()
                    if isinstance(spec, dict) and "custom" in spec:
                        out.append((str(spec.get("path")), str(spec["custom"])))
                    elif isinstance(spec, dict):
                        specs.extend(c[1] for c in spec.get("children", ())
                                     if isinstance(c, list) and len(c) == 2)
            else:
                stack.extend(node.values())
    return sorted(set(out))


def lookup(modules: dict[str, Any], path: str, cls: str) -> Any:
    """The instance given for ``path`` (or for its class name), or None."""
    qualname = cls.split(":")[-1]
    for key in (path, qualname, cls.replace(":", ".")):
        if key in modules:
            return modules[key]
    return None


def import_transferkit_class(name: str) -> type:
    """Import ``"module:qualname"``, allowing only classes defined under ``transferkit.``."""
    if not isinstance(name, str) or ":" not in name:
        raise LoadError(f"config.json names an invalid class {name!r}.")
    mod_name, qualname = name.split(":", 1)
    if not (mod_name == "transferkit" or mod_name.startswith("transferkit.")):
        raise LoadError(
            f"config.json names the class {name!r}, which is not part of transferkit; only "
            "transferkit classes are created when loading, so this folder is refused."
        )
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError:
        obj = None
    for part in qualname.split("."):
        if obj is None or not hasattr(obj, part):
            raise LoadError(f"config.json names the class {name!r}, which this transferkit "
                            "version does not have; load it with the version that saved it.")
        obj = getattr(obj, part)
        if not isinstance(obj, type):  # never walk through functions or other modules
            raise LoadError(f"config.json names {name!r}, which is not a transferkit class; "
                            "refused.")
    if not is_transferkit_class(obj):
        raise LoadError(f"{name!r} resolves to {obj.__module__}.{obj.__qualname__}, which is "
                        "not a transferkit class; refused.")
    return obj
