"""The classroom path on every chapter of the book: a leak-free student version, and a grader that
gives the book's answers their points and the stubs none.

One grading run over all chapters (``--jobs 2``): each submission has the book's answer to the
first and the last exercise and the stubs elsewhere, so every chapter shows full marks, zero and a
partial score at once. (That the book's own notebook passes every test cell is what nbval checks.)
"""

import json
import os
from pathlib import Path

import nbformat
import pytest

from dlbook.engine.assign import is_solution, leaks, student_version
from dlbook.engine.chapters import DlbookError, all_chapters
from dlbook.engine.cli import main
from dlbook.engine.sync import read_notebook

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = all_chapters(ROOT)


def grade_id(cell) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def answered(chapter):
    """The student version with the book's answers to the first and last exercises."""
    book = read_notebook(chapter)
    solutions = [c for c in book.cells if is_solution(c)]
    keep = {grade_id(solutions[0]): solutions[0].source, grade_id(solutions[-1]): solutions[-1].source}
    notebook = student_version(chapter)
    for cell in notebook.cells:
        if grade_id(cell) in keep:
            cell.source = keep[grade_id(cell)]
    return notebook, len(solutions)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_the_student_version_gives_nothing_away(chapter):
    book, student = read_notebook(chapter), student_version(chapter)
    assert leaks(book, student) == []
    assert "How to check your work" in student.cells[0].source
    solutions = [c for c in student.cells if is_solution(c)]
    assert solutions and all("raise NotImplementedError()" in c.source for c in solutions)
    assert all(c.outputs == [] for c in student.cells if grade_id(c))
    lesson_outputs = sum(len(c.get("outputs", [])) for c in student.cells if not grade_id(c))
    assert lesson_outputs > 0, "the lesson keeps its outputs and figures"


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    counts, refused = {}, {}
    for chapter in CHAPTERS:
        try:
            notebook, counts[chapter.stem] = answered(chapter)
        except DlbookError as error:  # reported by the leak test above; grade the rest
            refused[chapter.stem] = str(error)
            continue
        nbformat.write(notebook, folder / f"learner-{chapter.number:02d}.ipynb")
    previous = Path.cwd()
    os.chdir(ROOT)
    try:
        assert main(["grade", *sorted(str(p) for p in folder.glob("*.ipynb")),
                     "--out", str(folder / "graded"), "--jobs", "2"]) == 0
    finally:
        os.chdir(previous)
    rows = json.loads((folder / "graded" / "gradebook.json").read_text())
    return {row["chapter"]: row for row in rows}, counts, refused


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_the_grader_scores_the_answers_and_not_the_stubs(gradebook, chapter):
    rows, counts, refused = gradebook
    if chapter.stem in refused:
        pytest.fail(f"no student version: {refused[chapter.stem]}")
    row = rows[chapter.stem]
    assert row["status"] == "graded", row["message"]
    n = counts[chapter.stem]
    scores = [row["exercises"][str(k)] for k in range(1, n + 1)]
    assert scores[0] > 0 and scores[-1] > 0, f"the book's answers scored {scores}"
    assert all(score == 0 for score in scores[1:-1]), f"the stubs scored {scores}"
    assert row["total"] == scores[0] + scores[-1]
    assert (row["total"] < row["max"]) == (n > 2)
