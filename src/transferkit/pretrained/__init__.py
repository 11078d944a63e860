"""Pretrained backbones (text, image) and feature extraction, fully offline.

What is transferred here is the parameters of a network trained on a large source task
(sentence pairs, ImageNet): used frozen, its features make a small target task linearly
separable; handed to a fine-tuning method through ``backbone()``, its blocks can be frozen
or trained with layer-wise learning rates.

- :class:`TextEncoder`: all-MiniLM-L6-v2 sentence embeddings (Reimers & Gurevych, 2019;
  Wang et al., 2020), 384-d, or any Hugging Face model on disk.
- :class:`ImageEncoder`: EfficientNet-Lite0 ImageNet features (Tan & Le, 2019), 1280-d, or
  a timm / Hugging Face vision model on disk.

Both are stateless scikit-learn transformers that cache features on disk (see
:mod:`transferkit.pretrained._cache`) and never download anything: models come from
installed packages or local files, loaded with ``local_files_only=True`` in offline mode.

Optional dependencies: ``pip install 'transferkit[text]'`` and
``pip install 'transferkit[vision]'``.
"""

from __future__ import annotations

from ._cache import MissingDependencyError, default_cache_dir
from .image import IMAGE_MODELS, ImageBackbone, ImageEncoder, ImagePreprocess
from .text import MINILM_NAMES, SentenceEncoder, TextBackbone, TextEncoder, Tokenize

__all__ = ["TextEncoder", "ImageEncoder", "TextBackbone", "ImageBackbone", "SentenceEncoder",
           "Tokenize", "ImagePreprocess", "MissingDependencyError", "default_cache_dir",
           "IMAGE_MODELS", "MINILM_NAMES"]
