"""Shared machinery of the pretrained encoders: the on-disk feature cache, offline loading,
thread policy, input checks and the split of a network into blocks for fine-tuning.

The feature cache stores one ``.npy`` file per (model, preprocessing, data) triple. Its key
is a SHA-256 digest of

- the model's identity: its name and a digest of its weight files (so new weights under
  the same name never return stale features),
- every preprocessing setting that changes the output (resolution, normalisation,
  pooling, maximum sequence length, ...),
- the data: the bytes of an array (with its dtype and shape), of each image file, or of
  each text (length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` differ).

Files are written to a temporary name in the cache folder and renamed into place, so a
reader never sees half a file and two processes writing the same key are harmless.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError, TransferkitError

__all__ = [
    "MissingDependencyError",
    "Fingerprint",
    "default_cache_dir",
    "resolve_cache_dir",
    "load_features",
    "save_features",
    "file_digest",
    "folder_digest",
    "hf_offline",
    "inference_threads",
    "layer_blocks",
    "check_batch_size",
]

#: Bumped whenever the meaning of a cached file changes.
CACHE_FORMAT = "transferkit-features-v1"


class MissingDependencyError(TransferkitError, ImportError):
    """An optional package that this feature needs is not installed.

    Also an ``ImportError``, so ``except ImportError`` around optional features works.
    """


def require(module: str, purpose: str, install: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the package {module!r}, which is not installed; "
            f"install it with: pip install {install}"
        ) from exc


# ----------------------------------------------------------------------------------------
# Cache files
# ----------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$TRANSFERKIT_CACHE`` if set, else ``~/.cache/transferkit/features``."""
    env = os.environ.get("TRANSFERKIT_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "transferkit" / "features"


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()


class Fingerprint:
    """Incremental SHA-256 over typed, length-prefixed parts (no ambiguous concatenation)."""

    def __init__(self, *parts: Any) -> None:
        self._h = hashlib.sha256(CACHE_FORMAT.encode())
        for p in parts:
            self.add(p)

    def _raw(self, tag: bytes, data: bytes | memoryview) -> None:
        self._h.update(tag + len(data).to_bytes(8, "little"))
        self._h.update(data)

    def add(self, part: Any) -> Fingerprint:
        """Add a str, bytes, number, None, array or (nested) tuple/list of those."""
        if isinstance(part, str):
            self._raw(b"s", part.encode("utf-8", "surrogatepass"))
        elif isinstance(part, bytes | bytearray | memoryview):
            self._raw(b"b", bytes(part))
        elif part is None or isinstance(part, bool | int | float):
            self._raw(b"n", repr(part).encode())
        elif isinstance(part, np.ndarray):
            self.add_array(part)
        elif isinstance(part, tuple | list):
            self._raw(b"l", len(part).to_bytes(8, "little"))
            for p in part:
                self.add(p)
        else:
            raise TypeError(f"cannot fingerprint {type(part).__name__}")
        return self

    def add_array(self, a: np.ndarray) -> Fingerprint:
        a = np.ascontiguousarray(a)
        self._raw(b"a", f"{a.dtype.str}{a.shape}".encode())
        self._raw(b"d", memoryview(a).cast("B"))
        return self

    def add_file(self, path: str | os.PathLike) -> Fingerprint:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        self._raw(b"f", h.digest())
        return self

    def add_texts(self, texts: Iterable[str]) -> Fingerprint:
        for t in texts:
            self._raw(b"t", t.encode("utf-8", "surrogatepass"))
        return self

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _cache_path(directory: Path, prefix: str, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in prefix)[:60]
    return directory / f"{safe}-{key}.npy"


def load_features(directory: Path, prefix: str, key: str, shape: tuple[int, int]
                  ) -> np.ndarray | None:
    """The cached array for ``key``, or ``None`` (missing, unreadable or of the wrong shape)."""
    path = _cache_path(directory, prefix, key)
    if not path.is_file():
        return None
    try:
        out = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if out.shape != shape or out.dtype != np.float32:
        return None
    return out


def save_features(directory: Path, prefix: str, key: str, features: np.ndarray) -> None:
    """Write atomically (temporary file, then rename). A failure only warns: the cache
    is an optimisation, never a reason to lose the features just computed."""
    path = _cache_path(directory, prefix, key)
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(features), allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache file is as readable as a .npy
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        warnings.warn(f"could not write the feature cache file {path}: {exc}; the features "
                      "are returned but not cached (set cache_dir= or TRANSFERKIT_CACHE to a "
                      "writable folder, or cache=False)", RuntimeWarning, stacklevel=3)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# ----------------------------------------------------------------------------------------
# Weight identity
# ----------------------------------------------------------------------------------------

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, computed once per process per (path, size, mtime)."""
    p = os.path.realpath(path)
    st = os.stat(p)
    k = (p, st.st_size, st.st_mtime_ns)
    if k not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[k] = h.hexdigest()
    return _DIGESTS[k]


_SKIP = {"README.md", ".gitattributes", ".gitignore"}


def folder_digest(folder: str | os.PathLike) -> str:
    """Digest of every file of a model folder (weights, configs, tokenizer), by content."""
    root = Path(folder)
    fp = Fingerprint("folder")
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in _SKIP):
        fp.add(f.relative_to(root).as_posix()).add(file_digest(f))
    return fp.hexdigest()


# ----------------------------------------------------------------------------------------
# Offline loading and threads
# ----------------------------------------------------------------------------------------

_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


@contextlib.contextmanager
def hf_offline() -> Iterator[None]:
    """Hugging Face libraries in offline mode for the duration of a load.

    Sets ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` (and the already-imported
    ``huggingface_hub`` flag, which is read once at import) and silences progress bars;
    everything is restored afterwards. Loaders also pass ``local_files_only=True``.
    """
    saved = {k: os.environ.get(k) for k in _OFFLINE_ENV}
    os.environ.update(_OFFLINE_ENV)
    restore: list = []
    try:
        try:
            import huggingface_hub.constants as hc

            restore.append((hc, "HF_HUB_OFFLINE", hc.HF_HUB_OFFLINE))
            hc.HF_HUB_OFFLINE = True
        except ImportError:
            pass
        bars = None
        try:
            from transformers.utils import logging as tlog

            bars = tlog.is_progress_bar_enabled()
            tlog.disable_progress_bar()
        except ImportError:
            tlog = None
        try:
            yield
        finally:
            if tlog is not None and bars:
                tlog.enable_progress_bar()
    finally:
        for obj, attr, value in restore:
            setattr(obj, attr, value)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    try:  # cgroup v2 quota, e.g. "200000 100000" = 2 CPUs (a container limited with --cpus)
        quota, period = open("/sys/fs/cgroup/cpu.max", encoding="ascii").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _runnable_elsewhere() -> int | None:
    """Threads running or ready to run besides this one, right now (Linux), else None."""
    try:
        counts = []
        for _ in range(3):
            with open("/proc/loadavg", encoding="ascii") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        return max(0, sorted(counts)[1])
    except (OSError, ValueError, IndexError):
        return None


def inference_threads_count() -> int:
    """How many intra-op threads an encoding pass on the CPU uses.

    At most torch's current setting (so an explicit lower one, e.g. ``OMP_NUM_THREADS=1``
    under pytest-xdist, is kept), at most the cores this process may use (torch's default
    counts the host's cores, which in a container limited to 2 can mean dozens of threads
    on two cores), and no more than the cores not already busy: on a 2-core machine whose
    other core is taken, two threads run 2-3x slower than one (measured with MiniLM and
    EfficientNet-Lite0), because every parallel region waits for the descheduled thread.
    """
    import torch

    cpus = available_cpus()
    n = min(torch.get_num_threads(), cpus)
    busy = _runnable_elsewhere()
    if busy is not None:
        n = min(n, max(1, cpus - busy))
    return max(1, n)


@contextlib.contextmanager
def inference_threads(device: Any) -> Iterator[None]:
    """On the CPU, :func:`inference_threads_count` intra-op threads; restored on exit."""
    import torch

    if getattr(device, "type", str(device)) != "cpu":
        yield
        return
    before = torch.get_num_threads()
    n = inference_threads_count()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------
# Blocks for fine-tuning
# ----------------------------------------------------------------------------------------


def layer_blocks(model: Any) -> list:
    """Split a network into an ordered list of sub-modules, input side first.

    The longest ``ModuleList``/``Sequential`` is taken as the layer stack (a transformer's
    ``encoder.layer``); the modules registered before it on the path from the root (the
    embeddings) come first, one block each, then one block per layer, then the modules
    registered after it (final norm, pooler). Registration order is the data-flow order
    for Hugging Face models. A model without such a stack is one block.
    """
    from torch import nn

    best_name, best = None, None
    for name, m in model.named_modules():
        if isinstance(m, nn.ModuleList | nn.Sequential) and len(m) > (len(best) if best else 1):
            best_name, best = name, m
    if best is None:
        return [model]
    before, after = [], []
    node, parts = model, best_name.split(".")
    for i, part in enumerate(parts):
        names = [n for n, _ in node.named_children()]
        idx = names.index(part)
        children = list(node.children())
        before += [c for c in children[:idx] if any(True for _ in c.parameters())]
        after = [c for c in children[idx + 1:] if any(True for _ in c.parameters())] + after
        node = children[idx]
        if i == len(parts) - 1:
            break
    return before + list(best) + after


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
            or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
