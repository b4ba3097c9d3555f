"""The book where readers are: every chapter on Python 3.13 with the floor versions of
pyproject.toml (Colab's TensorFlow 2.20 and Keras 3.13), every assertion holding.

Outputs are not compared (other versions print other last digits): each chapter is run the way
``dlbook run --seed`` runs it, with its own seed, in a kernel of ``build/floor-venv`` (made the
first time from ``tests/floors.txt``, about two minutes with TensorFlow's 620 MB, and kept while
the floors are unchanged).
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pytest

from dlbook.engine import rules
from dlbook.engine.chapters import all_chapters
from dlbook.engine.runner import Limits, chapter_job, execute, run_jobs

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ROOT / "tests" / "floors.txt"
VENV = ROOT / "build" / "floor-venv"


def floor_pins() -> dict[str, str]:
    pins = {}
    for line in FLOORS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_floors_are_pyproject_lower_bounds():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {}
    for requirement in dependencies:
        name, low = re.match(r"^([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement).groups()
        bounds[name.lower().replace("_", "-")] = low
    assert bounds == floor_pins()


def python_313() -> str:
    """A working Python 3.13: pyenv's own build first (its shim needs a version selected)."""
    candidates = [*sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13"))),
                  shutil.which("python3.13")]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 13)":
            return candidate
    pytest.fail("Python 3.13 is needed for the floor run (this machine kind has it under pyenv)")


@pytest.fixture(scope="module")
def floor_kernels(tmp_path_factory):
    """JUPYTER_PATH under which the "python3" kernel is the floor environment's Python 3.13."""
    stamp = VENV / ".floors-sha256"
    wanted = hashlib.sha256(FLOORS.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    python = VENV / "bin" / "python"
    if not (stamp.exists() and stamp.read_text() == wanted):
        subprocess.run([python_313(), "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-c", str(FLOORS), "-e", str(ROOT), "ipykernel"], check=True,
                       timeout=1800)
        stamp.write_text(wanted)
    folder = tmp_path_factory.mktemp("jupyter")
    kernel = folder / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3.13, floor versions", "language": "python"}))
    return folder


def test_the_floor_kernel_is_python_3_13_with_the_floor_versions(floor_kernels, monkeypatch,
                                                                 tmp_path):
    monkeypatch.setenv("JUPYTER_PATH", str(floor_kernels))
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, importlib.metadata as m\n"
        "print(sys.version_info[:2], m.version('tensorflow'), m.version('keras'), m.version('numpy'))")])
    run = execute(probe, tmp_path, dict(os.environ), Limits(), tmp_path / "kernel.log")
    assert run.error is None
    pins = floor_pins()
    assert probe.cells[0].outputs[0].text.strip() == (
        f"(3, 13) {pins['tensorflow']} {pins['keras']} {pins['numpy']}")


def test_every_chapter_passes_with_the_floor_versions(floor_kernels, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(floor_kernels))  # spawned workers inherit it
    chapters = all_chapters(ROOT)
    outcome = run_jobs([chapter_job(c, rules.book_seed(c)) for c in chapters], parallel=2,
                       threads=1)
    failed = [f"{r.chapter}: {r.error}" for r in outcome.results if not r.ok]
    assert failed == [], "\n".join(failed)
    assert len(outcome.results) == len(chapters)
