"""The dataset registry: provenance, checksums, the download cache and the offline switch.

Every dataset the book uses is registered here with where it comes from, its licence and the
sha256 of each file, and every loader verifies a file against that checksum before reading it.
Three kinds of file exist:

- **bundled** with a package the book depends on (scikit-learn, statsmodels, …): read in place
  with :func:`package_file`;
- **vendored** into this package, under ``dlbook/data/files/`` (see ``SOURCES.md`` there): read
  with :func:`vendored_file`;
- **downloaded** on request (full MNIST): :func:`fetch` keeps a verified copy in the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

FILES = Path(__file__).resolve().parent / "files"


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


def verify_bytes(content: bytes, expected: str, where: str) -> bytes:
    """Return ``content`` if its sha256 is ``expected``; raise :class:`DatasetError` otherwise."""
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise DatasetError(f"{where}: sha256 is {actual}, expected {expected}; the file is corrupt "
                           "or a different version")
    return content


@contextlib.contextmanager
def package_file(package: str, relative: str, sha256: str) -> Iterator[Path]:
    """A file that ships inside an installed package, checked against ``sha256``.

    Raises :class:`DatasetError` naming the package when it is not installed or lacks the file.
    """
    try:
        resource = resources.files(package).joinpath(relative)
    except ModuleNotFoundError:
        distribution = package.split(".")[0]
        raise DatasetError(f"the package {distribution!r} is not installed; it ships this dataset "
                           f"(pip install {distribution})") from None
    if not resource.is_file():
        raise DatasetError(f"{package} has no file {relative!r}; a different version of it is "
                           "installed than the one the book was made with")
    with resources.as_file(resource) as path:
        yield verify(Path(path), sha256)


def vendored_file(name: str) -> Path:
    """A file vendored into ``dlbook/data/files/`` (provenance in ``SOURCES.md`` there)."""
    path = FILES / name
    if not path.is_file():
        raise DatasetError(f"{path}: missing from this dlbook installation; reinstall dlbook "
                           "(its data files are package data)")
    return path


def cache_dir() -> Path:
    """Where downloaded or derived datasets are kept: ``$DLBOOK_DATA``, else ``~/.cache/dlbook``."""
    return Path(os.environ.get("DLBOOK_DATA", Path.home() / ".cache" / "dlbook"))


def downloads_allowed(offline: bool | None = None) -> bool:
    if offline is not None:
        return not offline
    return os.environ.get("DLBOOK_OFFLINE", "").strip().lower() not in {"1", "true", "yes"}


def write_atomically(target: Path, content: bytes) -> Path:
    """Write ``content`` to ``target`` through a temporary file, so no reader sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


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
