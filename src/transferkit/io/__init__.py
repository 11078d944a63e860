"""Save and load fitted models as a folder of data that cannot run code when read.

``model.save(path)`` (or :func:`save`) writes::

    path/
      config.json           format, versions, checksums and the object tree (JSON)
      tensors.safetensors   every numeric array and torch tensor, by attribute path
      objects/000.skops     scikit-learn (and other) objects, one skops file each

:func:`load` creates only transferkit classes (``cls.__new__`` + the saved attributes),
``torch.nn`` layers, and what skops creates for types on a short trusted list; nothing
is ever unpickled. A save writes into a temporary sibling folder and renames it into
place, so a failed save leaves the previous folder (or none) intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import LoadError, TransferkitError
from ._codec import Decoder, Encoder, custom_modules, lookup

__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION"]

FORMAT = "transferkit-model"
FORMAT_VERSION = 1
CONFIG = "config.json"
TENSORS = "tensors.safetensors"
_DATA_FILE = re.compile(r"(tensors\.safetensors|objects/\d{3,}\.skops)")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "scipy", "sklearn", "torch", "skops", "safetensors"):
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "__version__"):
            out[name] = str(mod.__version__)
    return out


def save(model: Any, path: str | os.PathLike) -> None:
    """Save ``model`` to the folder ``path`` (JSON + safetensors + skops, no pickle).

    Parameters
    ----------
    model : object
        A transferkit estimator (fitted or not), a :class:`transferkit.nn.TorchEstimator`,
        or any value made of those, NumPy arrays, torch tensors/modules, scikit-learn
        objects and plain Python containers.
    path : str or path-like
        Folder to create. An existing folder is replaced, only once the new one is
        complete, and only if it is empty or holds a saved transferkit model.

    Raises
    ------
    TransferkitError
        If a value cannot be saved as data (a lambda, an open file, ...); the message
        names its attribute. Nothing is written then.
    """
    from .. import __version__

    target = Path(os.path.abspath(path))  # "." or "m/" get a name; symlinks are not followed
    enc = Encoder()
    tree = enc.encode(model)  # everything is encoded in memory before touching the disk
    files: dict[str, bytes] = {}
    if enc.arrays:
        from safetensors.numpy import save as st_save

        try:
            files[TENSORS] = st_save(enc.arrays)
        except Exception as exc:
            raise TransferkitError(f"cannot write the arrays with safetensors: {exc}") from exc
    files.update(enc.blobs)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "transferkit_version": __version__,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "libraries": _versions(),
        "files": {name: _sha256(data) for name, data in files.items()},
        "tree": tree,
    }
    files[CONFIG] = json.dumps(config, indent=1, allow_nan=False).encode("utf-8")
    _write_folder(target, files)


def _is_replaceable(target: Path) -> bool:
    if not target.is_dir() or target.is_symlink():
        return False
    if not any(target.iterdir()):
        return True
    try:
        return json.loads((target / CONFIG).read_text("utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _write_folder(target: Path, files: dict[str, bytes]) -> None:
    exists = target.exists() or target.is_symlink()
    if exists and not _is_replaceable(target):
        raise TransferkitError(
            f"cannot save to {target}: it exists and is not a saved transferkit model (nor an "
            "empty folder); choose another path or remove it first."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()  # unlike mkdtemp, honours the umask: the saved folder gets normal permissions
    try:
        for name, data in files.items():
            file = tmp / name
            file.parent.mkdir(parents=True, exist_ok=True)
            with open(file, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if not exists:
            os.rename(tmp, target)
            return
        # Move the old folder aside, put the new one in place, then drop the old one;
        # if the second rename fails the old folder goes back.
        old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_config(root: Path) -> dict[str, Any]:
    file = root / CONFIG
    if not file.is_file():
        raise LoadError(f"{root} has no {CONFIG}; it is not a folder written by model.save.")
    try:
        config = json.loads(file.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise LoadError(f"{file} is not valid JSON ({exc}); the folder is corrupt.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise LoadError(f"{file} does not describe a transferkit model.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise LoadError(
            f"{root} uses model format version {version!r}; this transferkit reads version "
            f"{FORMAT_VERSION}" + ("; upgrade transferkit to load it." if newer else ".")
        )
    if not isinstance(config.get("files"), dict) or "tree" not in config:
        raise LoadError(f"{file} lacks its file list or object tree; the folder is corrupt.")
    return config


def _read_files(root: Path, listed: dict[str, Any]) -> dict[str, bytes]:
    out = {}
    for name, digest in listed.items():
        if not isinstance(name, str) or not _DATA_FILE.fullmatch(name):
            raise LoadError(f"{CONFIG} lists an unexpected file {name!r}; refused.")
        try:
            data = (root / name).read_bytes()
        except OSError:
            raise LoadError(f"{root / name} is missing; the saved folder is incomplete.") from None
        if _sha256(data) != digest:
            raise LoadError(f"{root / name} is corrupt (its checksum does not match the one "
                            f"in {CONFIG}); save the model again.")
        out[name] = data
    return out


def load(path: str | os.PathLike, modules: Mapping[str, Any] | None = None,
         trusted: Sequence[str] | None = None) -> Any:
    """Load a model saved with :func:`save`; nothing in the folder can run code.

    Parameters
    ----------
    path : str or path-like
        The folder written by ``model.save(path)``.
    modules : dict, optional
        Fresh instances of torch modules that are not plain ``torch.nn`` layers (your
        own ``nn.Module`` subclasses), keyed by attribute path (e.g.
        ``"estimator_.module_"``) or by class name (``"MyNet"``, used wherever that
        class appears). The saved weights are loaded into copies of them. The error
        raised without them lists the keys to pass.
    trusted : list of str, optional
        Extra type names to let skops create, beyond scikit-learn, NumPy, SciPy,
        transferkit and Python builtins; only for folders from a source you trust.

    Returns
    -------
    model
        The object that was saved, fitted state included.

    Raises
    ------
    LoadError
        If the folder is missing or corrupt, was written by an unknown format version,
        names a class outside transferkit, holds untrusted types, or needs ``modules``.
    """
    root = Path(path)
    if not root.exists():
        raise LoadError(f"no saved model at {root}: the folder does not exist.")
    if not root.is_dir():
        raise LoadError(f"{root} is a file; pass the folder written by model.save(path).")
    config = _read_config(root)
    files = _read_files(root, config["files"])
    tree = config["tree"]
    arrays: dict[str, Any] = {}
    if TENSORS in files:
        from safetensors.numpy import load as st_load

        try:
            arrays = st_load(files[TENSORS])
        except Exception as exc:
            raise LoadError(f"{root / TENSORS} is not a readable safetensors file: {exc}") \
                from None
    missing = [(p, c) for p, c in custom_modules(tree)
               if lookup(dict(modules or {}), p, c) is None]
    if missing:
        example = ", ".join(f"{p!r}: {c.split(':')[-1]}(...)" for p, c in missing)
        classes = ", ".join(sorted({f"{c.split(':')[-1]!r}: {c.split(':')[-1]}(...)"
                                    for _, c in missing}))
        raise LoadError(
            "this model holds torch modules of your own classes, which a saved folder "
            "cannot rebuild (their forward is code): "
            + ", ".join(f"{p} ({c})" for p, c in missing)
            + f". Pass fresh instances: transferkit.io.load(path, modules={{{example}}}), "
            f"or key them by class name (modules={{{classes}}})."
        )
    blobs = {name: data for name, data in files.items() if name.startswith("objects/")}
    decoder = Decoder(arrays, blobs, dict(modules or {}), list(trusted or []))
    try:
        return decoder.decode(tree)
    except LoadError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise LoadError(f"{root / CONFIG} is malformed ({type(exc).__name__}: {exc}); the "
                        "folder was edited or written by an incompatible version.") from exc
