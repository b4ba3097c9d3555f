"""dlbook assign and dlbook grade on a tiny book (no TensorFlow, about a second a kernel).

One grading run over a class of awkward submissions; each test checks one of them. The real
chapters are graded in tests/engine/test_classroom.py, and nbgrader's agreement is checked in
tests/engine/test_nbgrader.py."""

import hashlib
import json
import random
from pathlib import Path

import nbformat
import pytest

from dlbook.engine.assign import clear_solutions, leaks, remove_hidden_tests, student_version
from dlbook.engine.chapters import resolve
from dlbook.engine.cli import main
from dlbook.engine.sync import read_notebook, sync_chapter
from tests.engine.helpers import chapter_text, code, make_book

SECRET = "hidden-check-7f3a"
LESSON = chapter_text(
    "Some prose.",
    code("base = 21 * 2\nprint(base)"),
    code("def double(v):\n    ### BEGIN SOLUTION\n    return 2 * v\n    ### END SOLUTION",
         ["solution"]),
    code("assert double(2) == 4, 'double(2) should be 4'\n### BEGIN HIDDEN TESTS\n"
         f"assert double(-3) == -6, '{SECRET}: negative numbers'\n### END HIDDEN TESTS", ["tests"]),
    code("def square(v):\n    ### BEGIN SOLUTION\n    return v * v\n    ### END SOLUTION",
         ["solution"]),
    code("assert square(3) == 9", ["tests"]),
    code("def negate(v):\n    ### BEGIN SOLUTION\n    return -v\n    ### END SOLUTION",
         ["solution"]),
    code("assert negate(1) == -1", ["tests"]),
)
OTHER = chapter_text(code("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                          ["solution"]), code("assert f() == 1", ["tests"]), title="# Another")
ANSWERS = {1: "def double(v):\n    return v + v", 2: "def square(v):\n    return v ** 2",
           3: "def negate(v):\n    return 0 - v"}


def answer(student, **sources):
    """A copy of the student version with the given exercises' solution cells replaced."""
    notebook = nbformat.from_dict(student)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        for number, source in sources.items():
            if grade_id == f"01_tiny-ex{number[2:]}-solution":
                cell.source = source
    return notebook


def solution_cell(notebook, number):
    return next(c for c in notebook.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == f"01_tiny-ex{number}-solution")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Assign the tiny chapter, write a class of submissions, grade them all in one run."""
    root = make_book(tmp_path_factory.mktemp("book"), {"01_tiny": LESSON, "02_other": OTHER})
    for chapter in resolve(root, []):
        sync_chapter(chapter)
    main_cwd = Path.cwd()
    import os

    os.chdir(root)
    try:
        assert main(["run"]) == 0
        assert main(["assign", "--out", "student"]) == 0
    finally:
        os.chdir(main_cwd)
    student = nbformat.read(root / "student" / "01_tiny.ipynb", as_version=4)
    other = nbformat.read(root / "student" / "02_other.ipynb", as_version=4)
    subs = root / "submissions"
    subs.mkdir()
    class_ = {
        "full": answer(student, ex1=ANSWERS[1], ex2=ANSWERS[2], ex3=ANSWERS[3]),
        "untouched": student,
        "partial": answer(student, ex1=ANSWERS[1], ex3=ANSWERS[3]),
        "wrong": answer(student, ex1="def double(v):\n    return 2 * abs(v)"),
        "syntax": answer(student, ex1="def double(v)\n    return 2 * v", ex2=ANSWERS[2]),
        "raises": answer(student, ex1="def double(v):\n    return v / 0", ex3=ANSWERS[3]),
        "loops": answer(student, ex1="while True:\n    pass", ex2=ANSWERS[2]),
        "exits": answer(student, ex1=ANSWERS[1], ex2="import os\nos._exit(1)"),
        "segfault": answer(student, ex1=ANSWERS[1], ex2="import ctypes\nctypes.string_at(0)"),
        "hog": answer(student, ex1=ANSWERS[1],
                      ex2="import time\nblob = b'x' * (600 * 2**20)\ntime.sleep(10)"),
        "chatty": answer(student, ex1=ANSWERS[1] + "\nprint('x' * 3_000_000)", ex2=ANSWERS[2]),
    }
    tampered = answer(student, ex1="def double(v):\n    return 0")
    for cell in tampered.cells:
        if cell.metadata.get("nbgrader", {}).get("grade", False):
            cell.source = "pass  # the tests are gone"
    class_["tampered"] = tampered
    edited = answer(student, ex1=ANSWERS[1], ex2=ANSWERS[2], ex3=ANSWERS[3])
    edited.cells = [c for c in edited.cells if "base = 21" not in c.source]  # a lesson cell deleted
    edited.cells.remove(solution_cell(edited, 2))  # and a solution cell
    random.Random(0).shuffle(edited.cells)  # fixed seed: a test fixture, not a chapter
    edited.cells.append(nbformat.from_dict(solution_cell(edited, 1)))  # and one duplicated
    solution_cell(edited, 3).source = ANSWERS[3]
    class_["edited"] = edited
    no_chapter = nbformat.from_dict(student)
    del no_chapter.metadata["dlbook"]
    for cell in no_chapter.cells:
        cell.metadata.pop("nbgrader", None)
    class_["nochapter"] = no_chapter
    for name, notebook in class_.items():
        nbformat.write(notebook, subs / f"{name}.ipynb")
    nbformat.write(answer(other), subs / "otherchapter.ipynb")
    (subs / "notanotebook.ipynb").write_text("this is not JSON")
    (subs / "twice").mkdir()
    nbformat.write(class_["full"], subs / "twice" / "01_tiny.ipynb")  # student "twice" …
    nbformat.write(class_["untouched"], subs / "twice.ipynb")  # … submits two files
    files = sorted(str(p) for p in subs.rglob("*.ipynb"))
    hashes = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in files}
    out = root / "graded"
    arguments = ["grade", *files, "--out", str(out), "--chapter", "1", "--jobs", "2",
                 "--cell-timeout", "3", "--memory-limit", "400"]
    os.chdir(root)
    try:
        exit_code = main(arguments)
        first = {name: (out / name).read_bytes() for name in ("gradebook.csv", "gradebook.json")}
        assert main(arguments) == exit_code  # a re-run …
    finally:
        os.chdir(main_cwd)
    rows = {Path(r["submission"]).stem if Path(r["submission"]).stem != "01_tiny" else "twice/01_tiny": r
            for r in json.loads((out / "gradebook.json").read_text())}
    return {"root": root, "out": out, "rows": rows, "exit": exit_code, "first": first,
            "files": files, "hashes": hashes, "student": student, "book": read_notebook(
                resolve(root, ["1"])[0])}


def row(graded, name):
    return graded["rows"][name]


def feedback(graded, name):
    student = row(graded, name)["student"]
    chapter = row(graded, name)["chapter"] or "unknown"
    return (graded["out"] / "feedback" / f"{student}.{chapter}.md").read_text()


def test_the_class_is_graded_and_a_rerun_gives_the_same_gradebook(graded):
    assert graded["exit"] == 0
    for name, content in graded["first"].items():
        assert (graded["out"] / name).read_bytes() == content, f"{name} changed on a re-run"
    assert len(graded["rows"]) == len(graded["files"])


def test_submissions_are_never_modified(graded):
    for path, digest in graded["hashes"].items():
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(("name", "status", "scores"), [
    ("full", "graded", {"1": 1, "2": 1, "3": 1}),
    ("untouched", "graded", {"1": 0, "2": 0, "3": 0}),
    ("partial", "graded", {"1": 1, "2": 0, "3": 1}),
    ("wrong", "graded", {"1": 0, "2": 0, "3": 0}),  # passes the visible test, fails the hidden one
    ("syntax", "graded", {"1": 0, "2": 1, "3": 0}),
    ("raises", "graded", {"1": 0, "2": 0, "3": 1}),
    ("loops", "graded", {"1": 0, "2": 1, "3": 0}),
    ("exits", "kernel died", {"1": 1, "2": 0, "3": 0}),
    ("segfault", "kernel died", {"1": 1, "2": 0, "3": 0}),
    ("hog", "memory limit", {"1": 1, "2": 0, "3": 0}),
    ("chatty", "graded", {"1": 1, "2": 1, "3": 0}),
    ("tampered", "graded", {"1": 0, "2": 0, "3": 0}),  # the book's tests were restored
    ("edited", "graded", {"1": 1, "2": 0, "3": 1}),  # deleted, reordered, duplicated cells
])
def test_each_submission_gets_its_status_and_score(graded, name, status, scores):
    entry = row(graded, name)
    assert (entry["status"], entry["exercises"]) == (status, {k: float(v) for k, v in scores.items()})
    assert entry["total"] == sum(scores.values()) and entry["max"] == 3


@pytest.mark.parametrize(("name", "status", "message"), [
    ("otherchapter", "wrong chapter", "the notebook is chapter 02_other's, not 01_tiny's"),
    ("notanotebook", "not a notebook", "cannot be read as a notebook"),
    ("nochapter", "no chapter", "names no chapter of the book"),
])
def test_a_submission_that_cannot_be_graded_says_why(graded, name, status, message):
    entry = row(graded, name)
    assert entry["status"] == status and message in entry["message"] and entry["total"] == 0


def test_two_submissions_under_one_name_are_both_graded_and_flagged(graded):
    folder, file = row(graded, "twice/01_tiny"), row(graded, "twice")
    assert folder["student"] == file["student"] == "twice"
    assert folder["status"] == file["status"] == "duplicate"
    assert folder["total"] == 3 and file["total"] == 0
    assert "twice.ipynb" in folder["message"] and "both graded" in folder["message"]
    feedbacks = sorted(p.name for p in (graded["out"] / "feedback").glob("twice.*"))
    assert feedbacks == ["twice.01_tiny.2.md", "twice.01_tiny.md"]


def test_the_reasons_are_in_the_messages_and_the_feedback(graded):
    assert "exit code 1" in row(graded, "exits")["message"]
    assert "signal 11 (SIGSEGV)" in row(graded, "segfault")["message"]
    assert "went over 400 MiB" in row(graded, "hog")["message"]
    assert "cells" not in row(graded, "full")["message"]
    edited = row(graded, "edited")["message"]
    assert "exercise 2: the solution cell is missing" in edited and "more than once" in edited
    assert "ran past the per-cell time limit" in feedback(graded, "loops")
    assert "SyntaxError" in feedback(graded, "syntax")
    assert "ZeroDivisionError" in feedback(graded, "raises")
    assert "not answered yet" in feedback(graded, "untouched")
    assert "Score: **1 / 3**" in feedback(graded, "exits")


def test_feedback_never_shows_a_hidden_test(graded):
    text = feedback(graded, "wrong")
    assert "a hidden test failed: AssertionError" in text and "negative numbers" in text
    assert "assert double(-3)" not in text  # the assertion's message, never its source
    for path in (graded["out"] / "feedback").iterdir():
        assert "assert double(-3)" not in path.read_text()


def test_megabytes_of_output_are_cut_in_the_graded_notebook(graded):
    notebook = nbformat.read(graded["out"] / "graded" / "chatty.01_tiny.ipynb", as_version=4)
    texts = [o.get("text", "") for c in notebook.cells for o in c.get("outputs", [])]
    assert max(len(t) for t in texts) < 25_000
    assert any("characters cut by the grader" in t for t in texts)


def test_the_student_version_has_stubs_no_hidden_tests_and_the_lesson_outputs(graded):
    student = graded["student"]
    assert student.cells[0].cell_type == "markdown" and "How to check your work" in student.cells[0].source
    sources = "\n".join(c.source for c in student.cells[1:])  # after the header
    assert "return 2 * v" not in sources and SECRET not in json.dumps(student)
    assert sources.count("raise NotImplementedError()") == 3
    lesson = next(c for c in student.cells if c.source.startswith("base = 21"))
    assert lesson.outputs[0].text == "42\n"  # the lesson keeps its outputs
    exercise = solution_cell(student, 1)
    assert exercise.outputs == [] and exercise.metadata["deletable"] is False
    assert exercise.metadata.nbgrader["checksum"]
    assert leaks(graded["book"], student) == []


def test_a_student_version_that_would_leak_is_refused(tmp_path):
    leaky = chapter_text(code("print('def double(v): return 2 * v  # the answer, printed')"),
                         code("def double(v):\n    ### BEGIN SOLUTION\n"
                              "    return 2 * v  # the answer, printed\n    ### END SOLUTION",
                              ["solution"]),
                         code("assert double(1) == 2", ["tests"]))
    root = make_book(tmp_path / "book", {"01_leaky": leaky})
    chapter = resolve(root, ["1"])[0]
    sync_chapter(chapter)
    from dlbook.engine.runner import run_chapters

    assert run_chapters([chapter]).results[0].ok
    from dlbook.engine.chapters import DlbookError

    with pytest.raises(DlbookError, match="would give away the solution of 01_leaky-ex1-solution"):
        student_version(chapter)


def test_stubs_follow_nbgrader():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    assert clear_solutions(source) == ("def f(x):\n    y = 1\n    # YOUR CODE HERE\n"
                                       "    raise NotImplementedError()\n")
    assert clear_solutions("x = 1") == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert remove_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc") == "a\nc"


def test_grading_a_missing_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    root = make_book(tmp_path / "book", {"01_tiny": LESSON})
    monkeypatch.chdir(root)
    assert main(["grade", "nope.ipynb", "--out", "out"]) == 2
    assert "no such submission file: nope.ipynb" in capsys.readouterr().err
