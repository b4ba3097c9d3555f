"""The runner, on tiny chapters executed in real kernels (about a second each)."""

import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import psutil
import pytest

from dlbook.engine.chapters import resolve
from dlbook.engine.reports import format_report, format_results, over_budget, update_report
from dlbook.engine.runner import (
    Limits,
    _describe_failure,
    _Watch,
    chapter_job,
    coalesce_streams,
    find_headline,
    parse_seeds,
    run_chapters,
    run_jobs,
)
from dlbook.engine.sync import code_fingerprint, execution_problem, sync_chapter
from tests.engine.helpers import TINY, chapter_text, code, make_book

SEEDED = chapter_text(code("from dlbook import repro\nfrom dlbook.report import measure\n"
                           "SEED = repro.seed_in_force(42)\nmeasure('seed value', SEED)\nprint(SEED)"))


@pytest.fixture
def book(tmp_path):
    root = make_book(tmp_path / "book", {
        "01_tiny": TINY,
        "02_fails": chapter_text(code("x = 1"), code("y = 2"), code("raise ValueError('boom')"),
                                 code("print('after')")),
        "03_dies": chapter_text(code("import os\nos._exit(1)")),
        "04_seeded": SEEDED,
        "05_chatty": chapter_text(code("import sys, time\nprint('a')\nsys.stdout.flush()\n"
                                       "time.sleep(0.5)\nprint('b')")),
    })
    for chapter in resolve(root, []):
        sync_chapter(chapter)
    return root


def one(book, name, **kwargs):
    [result] = run_chapters(resolve(book, [name]), **kwargs).results
    return result


def test_a_chapter_runs_and_reports_time_memory_and_headline(book):
    chapter = resolve(book, ["1"])[0]
    result = one(book, "1")
    assert result.ok, result.error
    assert result.headline == "x is 42"
    assert 0 < result.wall_s < 60
    assert 20 < result.peak_mib < 2048  # a Python kernel's resident memory
    assert 0 < result.cpu_s < result.wall_s + 5
    notebook = nbformat.read(chapter.notebook, as_version=4)
    assert [c.execution_count for c in notebook.cells if c.cell_type == "code"] == [1, 2, 3, 4]
    assert notebook.cells[1].metadata.tags == ["colab-install"]  # first: the Colab install cell
    assert notebook.cells[2].outputs[0].text == "42\n"
    assert notebook.metadata.language_info == {"name": "python"}
    assert execution_problem(chapter) is None
    assert result.code == code_fingerprint(notebook)
    assert "execution" not in notebook.cells[2].metadata  # no timestamps in committed files


def test_a_failing_cell_is_named_with_its_source_line_and_the_notebook_left_untouched(book):
    chapter = resolve(book, ["2"])[0]
    before = chapter.notebook.read_bytes()
    result = one(book, "2")
    assert not result.ok
    line = chapter.source.read_text().splitlines().index("raise ValueError('boom')")  # 0-based
    assert ("02_fails.ipynb, cell 4 (\"raise ValueError('boom')\") at "
            f"chapters/02_fails.md:{line}: ValueError: boom") in result.error
    assert chapter.notebook.read_bytes() == before
    assert (book / "build" / "failed" / "02_fails.ipynb").exists()


def test_the_partial_run_has_no_outputs_from_an_older_run_after_the_failing_cell(book):
    chapter = resolve(book, ["2"])[0]
    notebook = nbformat.read(chapter.notebook, as_version=4)
    for count, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        cell.execution_count, cell.outputs = count + 1, [
            nbformat.v4.new_output("stream", name="stdout", text="old\n")]
    nbformat.write(notebook, chapter.notebook)
    assert not one(book, "2").ok
    partial = nbformat.read(book / "build" / "failed" / "02_fails.ipynb", as_version=4)
    codes = [c for c in partial.cells if c.cell_type == "code"][1:]  # after the install cell
    assert codes[0].execution_count == 2 and codes[0].outputs == []  # fresh: x = 1 prints nothing
    assert codes[2].outputs[0].ename == "ValueError"
    assert codes[3].outputs == [] and codes[3].execution_count is None


def test_a_dead_kernel_is_reported_with_its_exit_status(book):
    result = one(book, "3")
    assert not result.ok
    assert "03_dies.ipynb, cell 2" in result.error
    assert "the kernel died (exit code 1)" in result.error
    assert "out of memory" not in result.error


def test_a_kernel_killed_by_a_signal_names_it(book):
    chapter = resolve(book, ["3"])[0]
    chapter.source.write_text(chapter_text(code("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")))
    sync_chapter(chapter)
    assert "the kernel died (signal 9 (SIGKILL))" in one(book, "3").error


def test_a_death_near_the_memory_limit_says_so(book):
    from nbclient.exceptions import DeadKernelError

    chapter = resolve(book, ["3"])[0]
    notebook = nbformat.read(chapter.notebook, as_version=4)
    limits = Limits(memory_mib=1000)
    near = _describe_failure(chapter, 1, notebook, DeadKernelError("dead"), _Watch(), -9, 950, limits)
    assert "signal 9 (SIGKILL)" in near and "peak memory, 950 MiB, was near the limit" in near
    far = _describe_failure(chapter, 1, notebook, DeadKernelError("dead"), _Watch(), -9, 300, limits)
    assert "near the limit" not in far


def test_the_memory_limit_stops_a_kernel(book):
    chapter = resolve(book, ["3"])[0]
    chapter.source.write_text(chapter_text(code("import time\nx = b'x' * (400 * 2**20)\ntime.sleep(20)")))
    sync_chapter(chapter)
    started = time.perf_counter()
    result = one(book, "3", limits=Limits(memory_mib=200))
    assert time.perf_counter() - started < 15
    assert "went over the memory limit of 200 MiB (--memory-limit; peak" in result.error


def test_the_cell_time_limit_stops_an_infinite_loop(book):
    chapter = resolve(book, ["3"])[0]
    chapter.source.write_text(chapter_text(code("while True:\n    pass")))
    sync_chapter(chapter)
    result = one(book, "3", limits=Limits(cell_s=2))
    assert "the cell ran past its time limit of 2 s (--cell-timeout)" in result.error


def test_the_chapter_time_limit_stops_a_slow_chapter(book):
    chapter = resolve(book, ["3"])[0]
    chapter.source.write_text(chapter_text(code("import time\ntime.sleep(1.5)"),
                                           code("time.sleep(1.5)"), code("time.sleep(1.5)")))
    sync_chapter(chapter)
    started = time.perf_counter()
    result = one(book, "3", limits=Limits(chapter_s=2.5))
    assert time.perf_counter() - started < 20
    assert "the chapter ran past its time limit of 2 s (--timeout)" in result.error
    assert "cell 3 ('time.sleep(1.5)')" in result.error


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="limit cell_s must be a positive number, got 0"):
        Limits(cell_s=0)


def test_consecutive_prints_become_one_output_and_a_rebuild_is_byte_identical(book):
    chapter = resolve(book, ["5"])[0]
    assert one(book, "5").ok
    first = chapter.notebook.read_bytes()
    [_, cell] = [c for c in nbformat.reads(first.decode(), as_version=4).cells if c.cell_type == "code"]
    assert [o.text for o in cell.outputs] == ["a\nb\n"]
    assert one(book, "5").ok
    assert chapter.notebook.read_bytes() == first


def test_coalescing_keeps_other_outputs_in_place():
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="b\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="warn\n"),
                    nbformat.v4.new_output("display_data", data={"text/plain": "fig"}),
                    nbformat.v4.new_output("stream", name="stdout", text="c\n")]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    coalesce_streams(notebook)
    assert [(o.output_type, o.get("text")) for o in cell.outputs] == [
        ("stream", "a\nb\n"), ("stream", "warn\n"), ("display_data", None), ("stream", "c\n")]


def test_a_seed_run_sets_the_seed_records_measures_and_writes_nothing(book, monkeypatch):
    chapter = resolve(book, ["4"])[0]
    before = chapter.notebook.read_bytes()
    outcome = run_jobs([chapter_job(chapter, 5), chapter_job(chapter, 9)])
    assert [(r.seed, r.ok, r.measures) for r in outcome.results] == [
        (5, True, {"seed value": 5.0}), (9, True, {"seed value": 9.0})]
    assert chapter.notebook.read_bytes() == before
    monkeypatch.setenv("DLBOOK_SEED", "7")  # the book's own run never inherits a seed override
    assert one(book, "4").measures == {"seed value": 42.0}


def test_a_chapter_out_of_sync_is_not_run(book):
    chapter = resolve(book, ["1"])[0]
    chapter.source.write_text(chapter.source.read_text().replace("21 * 2", "21 * 3"))
    result = one(book, "1")
    assert not result.ok and "out of date" in result.error


def test_chapters_run_in_parallel_and_results_keep_their_order(book):
    results = run_chapters(resolve(book, ["1", "2"]), jobs=2).results
    assert [(r.chapter, r.ok) for r in results] == [("01_tiny", True), ("02_fails", False)]


def test_bad_job_count_is_refused(book):
    with pytest.raises(ValueError, match="jobs must be at least 1, got 0"):
        run_chapters(resolve(book, ["1"]), jobs=0)


def test_the_report_marks_a_failure_and_the_summary_shows_only_what_ran(book):
    good = one(book, "1")
    update_report(book, [good])
    chapter = resolve(book, ["1"])[0]
    chapter.source.write_text(chapter.source.read_text().replace("print(x)", "print(x)\nraise KeyError('k')"))
    sync_chapter(chapter)
    failed = one(book, "1")
    report = update_report(book, [failed])
    entry = report["chapters"]["01_tiny"]
    assert entry["status"] == "failed" and "KeyError" in entry["error"]
    assert entry["wall_s"] == good.wall_s  # the last good numbers are kept, marked failed
    markdown = (book / "reports" / "run_report.md").read_text()
    assert "| 01_tiny | FAILED |" in markdown
    summary = format_results([failed], 3.0)
    assert "01_tiny" in summary and "FAILED" in summary and "02_fails" not in summary
    assert "total: 1 run(s), 0 ok, 1 failed" in summary


def test_an_entry_from_older_code_is_stale(book):
    update_report(book, [one(book, "1")])
    chapter = resolve(book, ["1"])[0]
    chapter.source.write_text(chapter.source.read_text().replace("21 * 2", "21 * 3"))
    report = json.loads((book / "reports" / "run_report.json").read_text())
    assert "| 01_tiny | stale |" in format_report(book, report)


def test_budgets_are_flagged():
    assert over_budget({"wall_s": 91.0, "peak_mib": 100.0}) == ["91 s > 90 s"]
    assert over_budget({"wall_s": 10.0, "peak_mib": 3000.0}) == ["3000 MiB > 2048 MiB"]
    assert over_budget({"wall_s": 10.0, "peak_mib": 100.0}) == []


def test_headline_is_read_from_printed_output():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    notebook.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="noise\nHeadline: 97% accuracy\n")
    ]
    assert find_headline(notebook) == "97% accuracy"


def test_seed_lists_and_ranges_are_parsed():
    from dlbook.engine.chapters import DlbookError

    assert parse_seeds("42,0-3") == [42, 0, 1, 2, 3]
    assert parse_seeds("1, 1, 2") == [1, 2]
    for bad in ("a", "3-1", "-1", "1-x"):
        with pytest.raises(DlbookError):
            parse_seeds(bad)


def default_sigint():
    """In the child, before exec: SIGINT as a terminal's shell leaves it. A pytest-xdist worker
    ignores SIGINT, and an ignored signal stays ignored across exec, so without this the run
    would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_run_cleanly(tmp_path):
    """Ctrl-C in the terminal: one line, exit 130, running kernel stopped, queued chapters not run,
    finished ones reported, no notebook touched or half-written."""
    pid_file = tmp_path / "kernel.pid"
    root = make_book(tmp_path / "book", {
        "01_quick": TINY,
        "02_slow": chapter_text(code(f"import os, time\nopen({str(pid_file)!r}, 'w')"
                                     ".write(str(os.getpid()))\ntime.sleep(60)")),
        "03_queued": TINY,
    })
    for chapter in resolve(root, []):
        sync_chapter(chapter)
    before = {p.name: p.read_bytes() for p in (root / "notebooks").iterdir()}
    process = subprocess.Popen([sys.executable, "-m", "dlbook", "run"], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=default_sigint)
    deadline = time.time() + 90
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the slow chapter never started"
    time.sleep(0.5)
    kernel = int(pid_file.read_text())
    os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    out, err = process.communicate(timeout=120)  # a hang guard: slow under a loaded machine
    assert process.returncode == 130
    assert "interrupted: 1 done, 2 not run (02_slow, 03_queued)" in err
    assert "Traceback" not in out + err
    assert not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE
    after = {p.name: p.read_bytes() for p in (root / "notebooks").iterdir()}
    assert set(after) == set(before), "no temporary file left in notebooks/"
    assert after["02_slow.ipynb"] == before["02_slow.ipynb"]
    assert after["03_queued.ipynb"] == before["03_queued.ipynb"]
    report = json.loads((root / "reports" / "run_report.json").read_text())
    assert list(report["chapters"]) == ["01_quick"] and report["chapters"]["01_quick"]["status"] == "ok"


def test_the_book_run_always_uses_the_book_thread_count(book):
    chapter = resolve(book, ["4"])[0]
    chapter.source.write_text(chapter_text(code("import os\nprint(os.environ['TF_NUM_INTRAOP_THREADS'])")))
    sync_chapter(chapter)
    assert run_chapters([chapter], jobs=2, threads=1).results[0].ok
    [_, cell] = [c for c in nbformat.read(chapter.notebook, as_version=4).cells if c.cell_type == "code"]
    assert cell.outputs[0].text == "2\n"  # the stored outputs are made with BOOK_THREADS threads
