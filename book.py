#!/usr/bin/env python3
"""Build or test the book from a fresh clone: ``python3 book.py build`` / ``python3 book.py test``.

Each command first makes sure ``.venv`` exists and holds the pinned dependencies (re-installing
when ``pyproject.toml`` or ``constraints.txt`` changed), then runs:

- ``build``: ``dlbook sync`` (chapters/*.md → notebooks/*.ipynb) and ``dlbook run`` (execute every
  notebook, print the per-chapter table of wall time, peak memory and headline result).
- ``test``: ``pytest`` — the unit tests and strict nbval over every notebook.

Extra arguments go to the underlying command: ``python3 book.py build 01`` builds chapter 1 only,
``python3 book.py test tests/`` runs the unit tests only. Needs only Python 3.11 or 3.12.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".dlbook-installed"


def requirements_hash() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    wanted = requirements_hash()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (3, 11) <= sys.version_info[:2] <= (3, 12):
        sys.exit(f"book.py: needs Python 3.11 or 3.12, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"book.py: creating {VENV.name}/", flush=True)
        venv.create(VENV, with_pip=True)
    print("book.py: installing dependencies (first time: a few minutes)", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-c", "constraints.txt", "-e", ".[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"build", "test"}:
        print(__doc__.strip())
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "build":
        dlbook = str(BIN / "dlbook")
        synced = subprocess.run([dlbook, "sync", *rest], cwd=ROOT)
        if synced.returncode:
            return synced.returncode
        return subprocess.run([dlbook, "run", *rest], cwd=ROOT).returncode
    return subprocess.run([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
