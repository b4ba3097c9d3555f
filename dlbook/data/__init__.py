"""Datasets: a registry with provenance, offline by default, full datasets as a checked opt-in.

Every chapter runs offline on small *real* data, verified against a sha256 before use: files that
ship with a package the book depends on (scikit-learn's copy of the UCI handwritten digits, the
time series in statsmodels) or that are vendored into ``dlbook/data/files/`` (``SOURCES.md`` there
gives each file's origin, licence and checksum). Synthetic data is only ever returned by a loader
whose name says so. Full datasets (MNIST) are an explicit opt-in: downloaded once into a cache,
checked against a sha256, written atomically; with downloads switched off (``offline=True`` or
``DLBOOK_OFFLINE=1``) a missing file is a clear error.

Modules: :mod:`~dlbook.data.registry` (provenance, checksums, cache, fetch, offline switch),
:mod:`~dlbook.data.images`, :mod:`~dlbook.data.tabular`, :mod:`~dlbook.data.series` and
:mod:`~dlbook.data.text` (the loaders, by kind). Everything is importable from ``dlbook.data``.
"""

from dlbook.data.images import (
    DIGITS,
    MNIST,
    MNIST_5K,
    MNIST_URL,
    PHOTOS,
    load_digits,
    load_mnist,
    load_mnist_5k,
    load_photo,
    place_on_canvas,
)
from dlbook.data.registry import (
    REGISTRY,
    DatasetError,
    DatasetInfo,
    cache_dir,
    downloads_allowed,
    fetch,
    info,
    register,
    sha256_of,
    verify,
)
from dlbook.data.series import load_co2, load_elnino, load_seattle_weather, load_sunspots
from dlbook.data.tabular import (
    CHURN_EFFECTS,
    SYNTHETIC_CHURN,
    ChurnData,
    load_breast_cancer,
    load_synthetic_churn,
)
from dlbook.data.text import load_cmudict, load_sentiment_snippets, load_vader_lexicon

__all__ = [
    "CHURN_EFFECTS", "DIGITS", "MNIST", "MNIST_5K", "MNIST_URL", "PHOTOS", "REGISTRY",
    "SYNTHETIC_CHURN", "ChurnData", "DatasetError", "DatasetInfo", "cache_dir", "downloads_allowed",
    "fetch", "info", "load_breast_cancer", "load_cmudict", "load_co2", "load_digits", "load_elnino",
    "load_mnist", "load_mnist_5k", "load_photo", "load_seattle_weather", "load_sentiment_snippets",
    "load_synthetic_churn", "load_sunspots", "load_vader_lexicon", "place_on_canvas", "register",
    "sha256_of", "verify",
]
