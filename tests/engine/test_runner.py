"""The runner, on tiny chapters executed in real kernels (about a second each)."""

import json

import nbformat
import pytest

from dlbook.engine.chapters import resolve
from dlbook.engine.runner import find_headline, format_table, over_budget, run_chapters, update_report
from dlbook.engine.sync import execution_problem, sync_chapter
from tests.engine.helpers import TINY, chapter_text, code, make_book


@pytest.fixture
def book(tmp_path):
    root = make_book(tmp_path / "book", {
        "01_tiny": TINY,
        "02_fails": chapter_text(code("x = 1"), code("raise ValueError('boom')")),
        "03_dies": chapter_text(code("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")),
    })
    for chapter in resolve(root, []):
        sync_chapter(chapter)
    return root


def test_a_chapter_runs_and_reports_time_memory_and_headline(book):
    chapter = resolve(book, ["1"])[0]
    [result] = run_chapters([chapter])
    assert result.ok, result.error
    assert result.headline == "x is 42"
    assert 0 < result.wall_s < 60
    assert 20 < result.peak_mib < 2048  # a Python kernel's resident memory
    notebook = nbformat.read(chapter.notebook, as_version=4)
    assert [c.execution_count for c in notebook.cells if c.cell_type == "code"] == [1, 2, 3]
    assert notebook.cells[1].outputs[0].text == "42\n"
    assert notebook.metadata.language_info == {"name": "python"}
    assert execution_problem(chapter) is None
    assert "execution" not in notebook.cells[1].metadata  # no timestamps in committed files


def test_a_failing_cell_is_named_and_the_notebook_left_untouched(book):
    chapter = resolve(book, ["2"])[0]
    before = chapter.notebook.read_bytes()
    [result] = run_chapters([chapter])
    assert not result.ok
    assert "02_fails.ipynb, cell 2 (\"raise ValueError('boom')\"): ValueError: boom" in result.error
    assert chapter.notebook.read_bytes() == before
    assert (book / "build" / "failed" / "02_fails.ipynb").exists()


def test_a_dead_kernel_is_reported(book):
    [result] = run_chapters(resolve(book, ["3"]))
    assert not result.ok
    assert "kernel died" in result.error and "03_dies.ipynb, cell 1" in result.error


def test_a_chapter_out_of_sync_is_not_run(book):
    chapter = resolve(book, ["1"])[0]
    chapter.source.write_text(chapter.source.read_text().replace("21 * 2", "21 * 3"))
    [result] = run_chapters([chapter])
    assert not result.ok and "out of date" in result.error


def test_chapters_run_in_parallel_and_results_keep_their_order(book):
    results = run_chapters(resolve(book, ["1", "2"]), jobs=2, threads=1)
    assert [(r.chapter, r.ok) for r in results] == [("01_tiny", True), ("02_fails", False)]


def test_bad_job_count_is_refused(book):
    with pytest.raises(ValueError, match="jobs must be at least 1, got 0"):
        run_chapters(resolve(book, ["1"]), jobs=0)


def test_report_keeps_the_last_good_run_and_flags_budgets(book):
    [ok] = run_chapters(resolve(book, ["1"]))
    update_report(book, [ok])
    [failed] = run_chapters(resolve(book, ["2"]))
    report = update_report(book, [failed])
    assert list(report["chapters"]) == ["01_tiny"]
    stored = json.loads((book / "reports" / "run_report.json").read_text())
    assert stored["chapters"]["01_tiny"]["headline"] == "x is 42"
    markdown = (book / "reports" / "run_report.md").read_text()
    assert "| 01_tiny |" in markdown and "x is 42" in markdown
    assert "01_tiny" in format_table(report)
    assert over_budget({"wall_s": 91.0, "peak_mib": 100.0}) == ["91 s > 90 s"]
    assert over_budget({"wall_s": 10.0, "peak_mib": 3000.0}) == ["3000 MiB > 2048 MiB"]
    assert over_budget({"wall_s": 10.0, "peak_mib": 100.0}) == []


def test_headline_is_read_from_printed_output():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    notebook.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="noise\nHeadline: 97% accuracy\n")
    ]
    assert find_headline(notebook) == "97% accuracy"
