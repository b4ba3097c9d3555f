"""Datasets: a registry with provenance, offline by default, full datasets as a checked opt-in.

Every chapter runs offline on small *real* data that ships with a package the book depends on
(scikit-learn's copy of the UCI handwritten digits, for example), verified against a sha256 before
use. Synthetic data is only ever returned by a loader whose name says so. Full datasets (MNIST) are
an explicit opt-in: downloaded once into a cache, checked against a sha256, written atomically; with
downloads switched off (``offline=True`` or ``DLBOOK_OFFLINE=1``) a missing file is a clear error.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd


class DatasetError(Exception):
    """A dataset could not be provided; the message says what to do about it."""


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset comes from and how to check it."""

    name: str
    description: str
    origin: str
    licence: str
    synthetic: bool = False
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> checksum
    size: str = ""


REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    if info.name in REGISTRY:
        raise ValueError(f"dataset {info.name!r} is already registered")
    REGISTRY[info.name] = info
    return info


def info(name: str) -> DatasetInfo:
    """Provenance of a registered dataset."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; registered: {sorted(REGISTRY)}") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: str) -> Path:
    """Return ``path`` if its sha256 is ``expected``; raise :class:`DatasetError` otherwise."""
    actual = sha256_of(path)
    if actual != expected:
        raise DatasetError(
            f"{path}: sha256 is {actual}, expected {expected}; the file is corrupt or a different "
            "version — delete it and load again"
        )
    return path


# --- Bundled: handwritten digits ---------------------------------------------------------------

DIGITS = register(
    DatasetInfo(
        name="digits",
        description="1,797 handwritten digits, 8×8 greyscale, 10 classes",
        origin="UCI ML 'Optical Recognition of Handwritten Digits' (E. Alpaydin, C. Kaynak, 1998), "
        "test set, as bundled with scikit-learn (sklearn/datasets/data/digits.csv.gz)",
        licence="CC BY 4.0",
        sha256={"digits.csv.gz": "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"},
        size="1,797 images",
    )
)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled handwritten digits: images ``(1797, 8, 8)`` float32 in [0, 1], labels int64.

    The file is checked against its registered sha256 first. Used from chapter 2 on.
    """
    bundled = resources.files("sklearn.datasets.data") / "digits.csv.gz"
    with resources.as_file(bundled) as path:
        verify(Path(path), DIGITS.sha256["digits.csv.gz"])
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    images = (table[:, :-1] / 16.0).reshape(-1, 8, 8)
    return images, table[:, -1].astype(np.int64)


def place_on_canvas(images, size: int, offsets) -> np.ndarray:
    """Each image pasted onto its own empty ``size`` x ``size`` canvas (zeros), float32.

    ``images`` is ``(n, h, w)`` or ``(n, h, w, channels)``; ``offsets`` is one ``(row, column)``
    per image, the canvas position of the image's top-left pixel, each in ``0 … size - h`` (rows)
    and ``0 … size - w`` (columns), so the whole image lands on the canvas. The canvases keep the
    images' channel layout. Used in chapter 7 (shifted test digits) and chapter 8 (digits that are
    not centred).
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (n, h, w) or (n, h, w, channels), got shape {images.shape}")
    height, width = images.shape[1:3]
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < max(height, width):
        raise ValueError(f"size must be an int of at least the image size ({height}x{width}), "
                         f"got {size!r}")
    offsets = np.asarray(offsets)
    if offsets.shape != (len(images), 2) or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(f"offsets must be {len(images)} (row, column) pairs of ints, one per image, "
                         f"got an array of shape {offsets.shape} and dtype {offsets.dtype}")
    rows, columns = offsets[:, 0], offsets[:, 1]
    outside = (rows < 0) | (rows > size - height) | (columns < 0) | (columns > size - width)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise ValueError(f"offset {tuple(int(o) for o in offsets[first])} of image {first} puts it "
                         f"(partly) off the {size}x{size} canvas: rows must be in 0..{size - height}, "
                         f"columns in 0..{size - width}")
    canvases = np.zeros((len(images), size, size, *images.shape[3:]), dtype=np.float32)
    for canvas, image, (row, column) in zip(canvases, images, offsets, strict=True):
        canvas[row:row + height, column:column + width] = image
    return canvases


# --- Bundled: two photographs ------------------------------------------------------------------

PHOTOS = register(
    DatasetInfo(
        name="photos",
        description="Two colour photographs, 427×640×3: a Chinese temple ('china') and a flower",
        origin="scikit-learn's sample images (sklearn/datasets/images), from Flickr: china.jpg by "
        "danielbuechele, flower.jpg by vultilion (see the README.txt beside them)",
        licence="CC BY 2.0",
        sha256={
            "china.jpg": "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
            "flower.jpg": "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
        },
        size="2 images",
    )
)


def load_photo(name: str = "china") -> np.ndarray:
    """A real photograph, ``(427, 640, 3)`` uint8 RGB: ``"china"`` or ``"flower"``.

    The file is checked against its registered sha256 first. Used in chapter 7.
    """
    filename = f"{name}.jpg"
    if filename not in PHOTOS.sha256:
        raise ValueError(f"name must be 'china' or 'flower', got {name!r}")
    import matplotlib.image

    bundled = resources.files("sklearn.datasets.images") / filename
    with resources.as_file(bundled) as path:
        verify(Path(path), PHOTOS.sha256[filename])
        return np.asarray(matplotlib.image.imread(path))


# --- Opt-in full dataset: MNIST ----------------------------------------------------------------

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST = register(
    DatasetInfo(
        name="mnist",
        description="70,000 handwritten digits, 28×28 greyscale, 10 classes (opt-in download)",
        origin="Y. LeCun, C. Cortes, C. J. C. Burges; the mnist.npz file Keras downloads",
        licence="CC BY-SA 3.0",
        sha256={"mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"},
        size="11 MB download",
    )
)


def cache_dir() -> Path:
    """Where downloaded datasets are kept: ``$DLBOOK_DATA``, else ``~/.cache/dlbook``."""
    return Path(os.environ.get("DLBOOK_DATA", Path.home() / ".cache" / "dlbook"))


def downloads_allowed(offline: bool | None = None) -> bool:
    if offline is not None:
        return not offline
    return os.environ.get("DLBOOK_OFFLINE", "").strip().lower() not in {"1", "true", "yes"}


def fetch(url: str, filename: str, sha256: str, cache: Path | None = None,
          offline: bool | None = None) -> Path:
    """A verified local copy of ``url``: from the cache, or downloaded once into it.

    The download goes to a temporary file in the cache folder and is renamed into place only
    after its checksum matches, so the cache never holds a partial or wrong file under the
    final name. ``url`` may be a ``file://`` URL (this is how the tests run offline).
    """
    folder = Path(cache) if cache is not None else cache_dir()
    target = folder / filename
    if target.exists():
        return verify(target, sha256)
    if not downloads_allowed(offline):
        raise DatasetError(
            f"{filename} is not in the cache ({target}) and downloads are switched off "
            "(offline=True or DLBOOK_OFFLINE=1). Either allow downloads once while online, or "
            f"copy the file there yourself (sha256 {sha256}). The book's chapters do not need it: "
            "they use the bundled datasets."
        )
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        verify(Path(temporary), sha256)
        os.replace(temporary, target)
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(
            f"could not download {url} ({error}); check the connection, or copy {filename} "
            f"(sha256 {sha256}) into {folder}"
        ) from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def load_mnist(cache: Path | None = None, offline: bool | None = None, url: str = MNIST_URL):
    """Full MNIST, opt-in: ``((x_train, y_train), (x_test, y_test))``, images uint8 28×28.

    Downloads 11 MB once (see :func:`fetch`). Chapters default to :func:`load_digits`.
    """
    path = fetch(url, "mnist.npz", MNIST.sha256["mnist.npz"], cache, offline)
    with np.load(path, allow_pickle=False) as arrays:
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


# --- Synthetic: customer churn -----------------------------------------------------------------

SYNTHETIC_CHURN = register(
    DatasetInfo(
        name="synthetic_churn",
        description="Simulated telecom customers with a churn label drawn from a known model",
        origin="generated by dlbook.data.load_synthetic_churn (no real customers)",
        licence="MIT (part of dlbook)",
        synthetic=True,
    )
)

CONTRACT_SPELLINGS = {
    "month-to-month": ["Month-to-month", "month to month", "M2M", " month-to-month"],
    "one year": ["One year", "1 year", "12 months"],
    "two year": ["Two year", "2 years", "24 months"],
}
PAYMENT_SPELLINGS = {
    "electronic check": ["Electronic check", "e-check"],
    "bank transfer": ["Bank transfer", "bank-transfer"],
    "credit card": ["Credit card", "creditcard"],
    "mailed check": ["Mailed check"],
}

# The true model: churn ~ Bernoulli(sigmoid(logit)), logit = sum of these effects.
CHURN_EFFECTS = {
    "intercept": -3.7,
    "contract is month-to-month": +1.2,
    "contract is two year": -1.0,
    "per month of tenure above 24": -0.03,
    "per $ of monthly charges above 70": +0.02,
    "per support call above 1": +0.35,
    "4 or more support calls (extra)": +1.0,
    "pays by electronic check": +0.5,
    "senior citizen": +0.3,
    "per satisfaction point above 3": -0.6,
    "did not answer the satisfaction survey": +1.5,
    "region": 0.0,
}


@dataclass(frozen=True)
class ChurnData:
    frame: pd.DataFrame  # raw, dirty, one row per customer, label in column "churned"
    true_probability: np.ndarray  # the churn probability the label was drawn from
    effects: dict[str, float]  # the true model, on the logit scale


def _true_logit(contract, tenure, charges, calls, payment, senior, satisfaction) -> np.ndarray:
    e = CHURN_EFFECTS
    answered = ~np.isnan(satisfaction)
    return (
        e["intercept"]
        + e["contract is month-to-month"] * (contract == "month-to-month")
        + e["contract is two year"] * (contract == "two year")
        + e["per month of tenure above 24"] * (tenure - 24)
        + e["per $ of monthly charges above 70"] * (charges - 70)
        + e["per support call above 1"] * (calls - 1)
        + e["4 or more support calls (extra)"] * (calls >= 4)
        + e["pays by electronic check"] * (payment == "electronic check")
        + e["senior citizen"] * senior
        + np.where(answered, e["per satisfaction point above 3"] * (np.nan_to_num(satisfaction) - 3),
                   e["did not answer the satisfaction survey"])
    )


def load_synthetic_churn(n_customers: int = 6000, seed: int = 7) -> ChurnData:
    """A **synthetic** customer-churn table whose true churn model is known.

    How it is generated (all draws from ``numpy.random.default_rng(seed)``):

    - ``tenure_months``: 1 + an exponential with mean 22, capped at 72.
    - ``contract``: month-to-month, one year or two year; longer tenure makes long contracts likelier.
    - ``monthly_charges``: 20 + 100 × Beta(2, 2) dollars.
    - ``support_calls``: Poisson with mean 1.3 (calls in the last 90 days).
    - ``payment_method``: electronic check, bank transfer, credit card or mailed check.
    - ``senior_citizen``: 1 for about 16% of customers.
    - ``satisfaction``: survey score 1–5, missing (NaN) for the ~30% who did not answer.
    - ``region``: north/south/east/west — it has *no* effect on churn (a decoy).
    - ``churned``: 1 with probability sigmoid(logit), the logit being the sum of
      :data:`CHURN_EFFECTS`. Note the jump at 4+ support calls (not linear in calls) and that not
      answering the survey raises churn risk (the missingness itself is informative).

    To teach cleaning, ~8% of ``contract`` and ``payment_method`` values use other spellings of
    the same category (``"M2M"``, ``"1 year"``, ``"e-check"`` …), and ~2% of ``monthly_charges``
    are missing (NaN) at random. Churners are the minority (about 1 in 5). Taught in chapter 1.
    """
    if not isinstance(n_customers, int) or n_customers < 100:
        raise ValueError(f"n_customers must be an int of at least 100, got {n_customers!r}")
    rng = np.random.default_rng(seed)
    n = n_customers
    tenure = np.minimum(72, 1 + rng.exponential(22, n)).astype(int)
    long_share = np.clip(tenure / 90, 0, 0.75)
    u = rng.random(n)
    contract = np.where(u < 1 - long_share, "month-to-month",
                        np.where(u < 1 - long_share / 2, "one year", "two year"))
    charges = np.round(20 + 100 * rng.beta(2, 2, n), 2)
    calls = rng.poisson(1.3, n)
    payment = rng.choice(list(PAYMENT_SPELLINGS), size=n, p=[0.34, 0.22, 0.22, 0.22])
    senior = (rng.random(n) < 0.16).astype(int)
    satisfaction = rng.integers(1, 6, n).astype(float)
    satisfaction[rng.random(n) < 0.3] = np.nan
    region = rng.choice(["north", "south", "east", "west"], size=n)
    probability = 1 / (1 + np.exp(-_true_logit(contract, tenure, charges, calls, payment, senior,
                                                satisfaction)))
    churned = (rng.random(n) < probability).astype(int)

    def misspell(values: np.ndarray, spellings: dict[str, list[str]]) -> np.ndarray:
        values = values.astype(object)
        for index in np.flatnonzero(rng.random(n) < 0.08):
            values[index] = rng.choice(spellings[values[index]])
        return values

    recorded_charges = charges.copy()
    recorded_charges[rng.random(n) < 0.02] = np.nan
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(1, n + 1)],
            "tenure_months": tenure,
            "contract": misspell(contract, CONTRACT_SPELLINGS),
            "monthly_charges": recorded_charges,
            "support_calls": calls,
            "payment_method": misspell(payment, PAYMENT_SPELLINGS),
            "senior_citizen": senior,
            "satisfaction": satisfaction,
            "region": region,
            "churned": churned,
        }
    )
    return ChurnData(frame, probability, dict(CHURN_EFFECTS))
