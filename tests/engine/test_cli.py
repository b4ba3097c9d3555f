"""The command line: exit codes and messages, never a traceback for bad input."""

import pytest

from dlbook.engine.cli import main
from tests.engine.helpers import COMPLIANT, FRONT_MATTER, TINY, make_book


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


def test_run_sweep_then_check_passes(book, capsys):
    (book / "chapters" / "01_tiny.md").write_text(COMPLIANT)
    main(["sync"])
    assert main(["check"]) == 1  # not executed yet
    assert "never executed" in capsys.readouterr().out
    assert main(["run", "1"]) == 0
    out = capsys.readouterr().out
    assert "01_tiny: ok" in out and "x is 42" in out and "total: 1 run(s), 1 ok, 0 failed" in out
    assert main(["check"]) == 1  # no seed sweep yet
    assert "not in reports/seed_sweep.json" in capsys.readouterr().out
    assert main(["sweep", "--seeds", "0-3", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "01_tiny (seed 42): ok" in out and "01_tiny (seed 3): ok" in out
    sweep = (book / "reports" / "seed_sweep.md").read_text()
    assert "| 01_tiny | 42, 0, 1, 2, 3 | 5 of 5 | current |" in sweep
    assert "| mean | " in sweep  # the measure, per seed
    assert main(["check"]) == 0
    assert "every rule holds, seed sweep passed" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "executed" in capsys.readouterr().out


def test_run_with_seeds_writes_no_notebook_and_no_report(book, capsys):
    main(["sync"])
    before = (book / "notebooks" / "01_tiny.ipynb").read_bytes()
    assert main(["run", "1", "--seed", "3", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "01_tiny (seed 3): ok" in out and "01_tiny (seed 4): ok" in out
    assert (book / "notebooks" / "01_tiny.ipynb").read_bytes() == before
    assert not (book / "reports").exists()


def test_check_names_each_broken_rule(book, capsys):
    (book / "chapters" / "01_tiny.md").write_text(
        TINY.replace("x = 21 * 2", "import numpy as np\nrng = np.random.default_rng(7)\nx = 21 * 2"))
    main(["sync"])
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "1 exercises (cells tagged 'solution'); a chapter has 2–4" in out
    assert "code cells outside the exercises assert something; at least 3 must" in out
    assert "the first code cell must call repro.setup" in out
    assert "hard-coded seed in 'rng = np.random.default_rng(7)'" in out


def test_a_corrupt_report_is_one_line(book, capsys):
    main(["sync"])
    (book / "reports").mkdir()
    (book / "reports" / "run_report.json").write_text("{ nope")
    assert main(["check"]) == 2
    assert "reports/run_report.json: not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sync", "nope"], "unknown chapter 'nope'; chapters are: 01_tiny"),
        (["run", "nope"], "unknown chapter 'nope'"),
        (["run", "--jobs", "0"], "dlbook run: argument -j/--jobs: must be positive, got 0"),
        (["run", "--threads", "0"], "argument --threads: must be positive, got 0"),
        (["run", "--timeout", "soon"], "argument --timeout: expected a number, got 'soon'"),
        (["run", "--seed", "-1"], "argument --seed: a seed is a non-negative integer, got '-1'"),
        (["sweep", "--seeds", "1-x"], "seeds are non-negative integers or ranges"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "--threads", "1"], "--threads applies to --seed runs only"),
        (["run", "--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_bad_input_is_a_message_and_exit_2(book, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlbook: error: ") and message in err and err.count("\n") == 1


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
