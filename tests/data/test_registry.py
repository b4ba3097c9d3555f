"""The registry: provenance, checksums, the download cache and the offline switch."""

import hashlib

import pytest

from dlbook import data
from dlbook.data import DatasetError, DatasetInfo, fetch
from dlbook.data.registry import package_file, vendored_file, verify_bytes, write_atomically


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


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


def test_every_registered_dataset_says_where_it_comes_from():
    for name, entry in data.REGISTRY.items():
        assert entry.origin and entry.licence and entry.description, name
        assert entry.synthetic == name.startswith("synthetic"), name
        assert all(len(s) == 64 for s in entry.sha256.values()), name


def test_verify_bytes_names_the_file():
    assert verify_bytes(b"abc", sha(b"abc"), "x") == b"abc"
    with pytest.raises(DatasetError, match="where: sha256 is"):
        verify_bytes(b"abc", "0" * 64, "where")


def test_package_file_is_checked_and_missing_pieces_are_explained():
    expected = data.DIGITS.sha256["digits.csv.gz"]
    with package_file("sklearn.datasets.data", "digits.csv.gz", expected) as path:
        assert path.name == "digits.csv.gz"
    with pytest.raises(DatasetError, match="sha256 is"):
        with package_file("sklearn.datasets.data", "digits.csv.gz", "0" * 64):
            pass
    with pytest.raises(DatasetError, match="'no_such_package' is not installed"):
        with package_file("no_such_package.data", "x.csv", expected):
            pass
    with pytest.raises(DatasetError, match="has no file 'nope.csv'"):
        with package_file("sklearn.datasets.data", "nope.csv", expected):
            pass


def test_vendored_file_missing_is_explained():
    assert vendored_file("SOURCES.md").is_file()
    with pytest.raises(DatasetError, match="missing from this dlbook installation"):
        vendored_file("nope.gz")


def test_write_atomically_leaves_no_temporary_file(tmp_path):
    target = write_atomically(tmp_path / "sub" / "f.bin", b"content")
    assert target.read_bytes() == b"content"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]
