"""The command line: exit codes and messages, never a traceback for bad input."""

import pytest

from dlbook.engine.cli import main
from tests.engine.helpers import FRONT_MATTER, TINY, make_book


@pytest.fixture
def book(tmp_path, monkeypatch):
    root = make_book(tmp_path / "book", {"01_tiny": TINY})
    monkeypatch.chdir(root)
    return root


def test_sync_then_check_then_list(book, capsys):
    assert main(["sync", "--check"]) == 1
    assert "missing" in capsys.readouterr().out
    assert main(["sync"]) == 0
    assert "01_tiny: created" in capsys.readouterr().out
    assert main(["sync", "--check"]) == 0
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01_tiny" in out and "NOT EXECUTED" in out and "A tiny chapter" in out


def test_run_then_check_passes(book, capsys):
    main(["sync"])
    assert main(["check"]) == 1  # not executed yet
    assert main(["run", "1"]) == 0
    out = capsys.readouterr().out
    assert "01_tiny: ok" in out and "x is 42" in out
    assert main(["check"]) == 0
    assert "in sync, executed, within budget" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "executed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sync", "nope"], "unknown chapter 'nope'; chapters are: 01_tiny"),
        (["run", "nope"], "unknown chapter 'nope'"),
        (["run", "--jobs", "0"], "--jobs must be at least 1, got 0"),
        (["run", "--threads", "0"], "--threads must be at least 1, got 0"),
    ],
)
def test_bad_input_is_a_message_and_exit_2(book, capsys, argv, message):
    assert main(argv) == 2
    assert f"dlbook: error: {message}" in capsys.readouterr().err


def test_malformed_source_is_a_message(book, capsys):
    (book / "chapters" / "01_tiny.md").write_text(FRONT_MATTER + "\n# T\n\n```{code-cell} ipython3\nx=1\n")
    assert main(["sync"]) == 2
    assert "01_tiny.md:14: code cell is never closed" in capsys.readouterr().err


def test_missing_notebook_is_a_failed_run(book, capsys):
    assert main(["run", "1"]) == 1
    assert "01_tiny.ipynb: missing" in capsys.readouterr().err


def test_outside_a_book(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 2
    assert "no book found" in capsys.readouterr().err
