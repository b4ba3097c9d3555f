"""book.py, the fresh-clone entry point: each option goes to the command that owns it."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def book_py(monkeypatch):
    spec = importlib.util.spec_from_file_location("book_script", ROOT / "book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []

    class Done:
        returncode = 0

    def fake_run(command, **kwargs):
        calls.append((command[1:] if command[0].endswith("dlbook") else command[1:], kwargs))
        return Done()

    monkeypatch.setattr(module, "ensure_environment", lambda: None)
    monkeypatch.setattr(module.subprocess, "run", fake_run)
    return module, calls


def test_build_routes_each_option_to_its_command(book_py):
    module, calls = book_py
    assert module.main(["build", "02", "--force", "--jobs", "2", "--threads", "1",
                        "--timeout", "300"]) == 0
    assert [c for c, _ in calls] == [["sync", "02", "--force"],
                                     ["run", "02", "--jobs", "2", "--threads", "1",
                                      "--timeout", "300.0"]]


def test_sweep_and_test_commands(book_py, monkeypatch):
    module, calls = book_py
    monkeypatch.setenv("DLBOOK_SEED", "3")
    assert module.main(["sweep", "1", "--seeds", "0-4", "--jobs", "2"]) == 0
    assert module.main(["test", "tests/", "-k", "data"]) == 0
    (sweep, sweep_kwargs), (test, test_kwargs) = calls
    assert sweep == ["sweep", "1", "--seeds", "0-4", "--jobs", "2"]
    assert test == ["-m", "pytest", "-n", "2", "tests/", "-k", "data"]
    assert "DLBOOK_SEED" not in test_kwargs["env"], "stored outputs are compared at the book's seed"


@pytest.mark.parametrize(("argv", "message"), [
    (["nope"], "invalid choice: 'nope'"),
    (["build", "--jobs", "0"], "argument --jobs: must be positive, got 0"),
    (["build", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ([], "the following arguments are required"),
])
def test_bad_arguments_are_refused_before_anything_runs(book_py, capsys, argv, message):
    module, calls = book_py
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert calls == []


def test_help_exits_0_and_names_the_commands():
    result = subprocess.run([sys.executable, str(ROOT / "book.py"), "--help"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    assert "build" in result.stdout and "sweep" in result.stdout and "test" in result.stdout
