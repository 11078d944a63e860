"""Datasets with a known shift: synthetic generators, and table loaders for user data."""

from .fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_PATH,
    DatasetUnavailableError,
    load_fashion_mnist,
)
from .labels import keep_labels
from .sentiment import (
    SENTIMENT_DOMAINS,
    SentimentDomain,
    load_sentiment_domains,
    sentiment_domain_pair,
)
from .synthetic import (
    DensityRatio,
    make_covariate_shift,
    make_digits_shift,
    make_heterogeneous_moons,
    make_two_moons_shift,
)
from .tables import encode_features, load_table, split_domains

__all__ = ["make_two_moons_shift", "make_heterogeneous_moons", "make_covariate_shift",
           "keep_labels",
           "make_digits_shift", "DensityRatio",
           "load_table", "split_domains", "encode_features"]
__all__ += ["load_fashion_mnist", "FASHION_MNIST_CLASSES", "FASHION_MNIST_PATH",
            "load_sentiment_domains", "sentiment_domain_pair", "SentimentDomain",
            "SENTIMENT_DOMAINS", "DatasetUnavailableError"]
