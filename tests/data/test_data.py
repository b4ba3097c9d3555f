import hashlib
import io

import numpy as np
import pytest

from dlbook import data
from dlbook.data import DatasetError, DatasetInfo, fetch, load_digits, load_synthetic_churn


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_digits_are_the_bundled_real_data():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert sorted(set(labels.tolist())) == list(range(10))
    assert labels[:10].tolist() == list(range(10))  # the UCI file starts 0, 1, …, 9
    assert not data.info("digits").synthetic


def test_registry_has_provenance():
    for name in ("digits", "mnist", "synthetic_churn"):
        info = data.info(name)
        assert info.origin and info.licence
    assert data.info("synthetic_churn").synthetic
    with pytest.raises(KeyError, match="unknown dataset 'cifar'"):
        data.info("cifar")
    with pytest.raises(ValueError, match="already registered"):
        data.register(DatasetInfo("digits", "", "", ""))


def test_verify_rejects_a_changed_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert data.verify(path, sha(b"abc")) == path
    with pytest.raises(DatasetError, match="sha256 is .* expected 0+; the file is corrupt"):
        data.verify(path, "0" * 64)


@pytest.fixture
def remote(tmp_path):
    """A 'remote' file served through a file:// URL, so downloads are tested offline."""
    source = tmp_path / "remote" / "payload.bin"
    source.parent.mkdir()
    source.write_bytes(b"payload")
    return source


def test_fetch_downloads_once_then_uses_the_cache(tmp_path, remote):
    cache = tmp_path / "cache"
    path = fetch(remote.as_uri(), "payload.bin", sha(b"payload"), cache, offline=False)
    assert path == cache / "payload.bin" and path.read_bytes() == b"payload"
    remote.unlink()  # the cache must now be enough, even offline
    assert fetch(remote.as_uri(), "payload.bin", sha(b"payload"), cache, offline=True) == path


def test_fetch_with_a_wrong_checksum_leaves_nothing_behind(tmp_path, remote):
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="sha256 is"):
        fetch(remote.as_uri(), "payload.bin", "0" * 64, cache, offline=False)
    assert list(cache.iterdir()) == []


def test_fetch_offline_without_a_cached_file_says_what_to_do(tmp_path, remote, monkeypatch):
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(DatasetError, match="downloads are switched off .* copy the file there"):
        fetch(remote.as_uri(), "payload.bin", sha(b"payload"), tmp_path / "cache")


def test_fetch_of_an_unreachable_url_says_what_to_do(tmp_path):
    missing = (tmp_path / "nowhere.bin").as_uri()
    with pytest.raises(DatasetError, match="could not download .* copy nowhere.bin"):
        fetch(missing, "nowhere.bin", "0" * 64, tmp_path / "cache", offline=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path))
    assert data.cache_dir() == tmp_path


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


def test_synthetic_churn_is_reproducible_and_documented():
    first, second = load_synthetic_churn(seed=1), load_synthetic_churn(seed=1)
    assert first.frame.equals(second.frame)
    assert not first.frame.equals(load_synthetic_churn(seed=2).frame)
    frame = first.frame
    assert len(frame) == 6000 and frame["customer_id"].is_unique
    assert 0.15 < frame["churned"].mean() < 0.27  # churners are the minority
    # labels are drawn from the documented probabilities
    assert abs(frame["churned"].mean() - first.true_probability.mean()) < 0.02
    assert frame["satisfaction"].isna().mean() == pytest.approx(0.3, abs=0.03)
    assert {"M2M", "month-to-month"} <= set(frame["contract"])
    assert first.effects["region"] == 0.0


def test_synthetic_churn_effects_show_in_the_data():
    frame = load_synthetic_churn().frame
    by_survey = frame.groupby(frame["satisfaction"].isna())["churned"].mean()
    assert by_survey[True] > by_survey[False] + 0.1  # not answering is a churn signal
    by_region = frame.groupby("region")["churned"].mean()
    assert by_region.max() - by_region.min() < 0.05  # region is a decoy


@pytest.mark.parametrize("n", [10, 100.5, "6000"])
def test_synthetic_churn_size_is_validated(n):
    with pytest.raises(ValueError, match="n_customers must be an int of at least 100"):
        load_synthetic_churn(n_customers=n)


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
