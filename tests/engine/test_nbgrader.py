"""dlbook assign and grade agree with the real nbgrader (0.9.6), run in an environment of its own.

nbgrader is heavy (about 100 packages and Jupyter server extensions), so it is not a dependency of
dlbook: this test builds ``build/nbgrader-venv`` from ``nbgrader-constraints.txt`` the first time
(about 20 s from PyPI) and reuses it while the pins are unchanged. nbgrader runs the book's
notebooks in a kernel of the book's own environment, through a kernelspec on ``JUPYTER_PATH``.
"""

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

from dlbook.engine.assign import header_notebook, is_grade, is_solution, student_version
from dlbook.engine.chapters import all_chapters
from dlbook.engine.cli import main
from dlbook.engine.reports import REPORT_JSON, load
from dlbook.engine.sync import read_notebook

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = Path(__file__).with_name("nbgrader-constraints.txt")
VENV = ROOT / "build" / "nbgrader-venv"
CHAPTERS = all_chapters(ROOT)
SCORES_SCRIPT = """
import json, sys
from nbgrader.api import Gradebook
db, assignment, students = sys.argv[1], sys.argv[2], sys.argv[3:]
with Gradebook("sqlite:///" + db) as gradebook:
    scores = {}
    for student in students:
        notebook = gradebook.find_submission_notebook(assignment, assignment, student)
        scores[student] = {grade.name: grade.score for grade in notebook.grades}
print(json.dumps(scores))
"""


@pytest.fixture(scope="module")
def nbgrader(tmp_path_factory):
    """(run, course): run(*arguments) runs nbgrader in a course folder set up for the book."""
    stamp = VENV / ".constraints-sha256"
    wanted = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == wanted):
        venv.create(VENV, with_pip=True, clear=True)
        subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "-c", str(CONSTRAINTS), "nbgrader==0.9.6"],
                       check=True, timeout=900)
        stamp.write_text(wanted)
    course = tmp_path_factory.mktemp("course")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course}/gradebook.db'\n")
    kernel = course / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "the book's environment", "language": "python"}))
    env = {**os.environ, "JUPYTER_PATH": str(course / "jupyter"),
           # nbgrader calls `alembic` by name: its environment's bin/ must come first
           "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    def run(*arguments):
        result = subprocess.run([str(VENV / "bin" / "nbgrader"), *arguments], cwd=course, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result

    return run, course, env


def test_student_versions_equal_nbgraders_cell_for_cell(nbgrader):
    run, course, _ = nbgrader
    compared = 0
    for chapter in CHAPTERS:
        source = course / "source" / chapter.stem
        source.mkdir(parents=True)
        nbformat.write(read_notebook(chapter), source / chapter.notebook.name)
        header = course / f"{chapter.stem}.header.ipynb"
        nbformat.write(header_notebook(chapter), header)
        run("generate_assignment", chapter.stem, f"--IncludeHeaderFooter.header={header}", "--force")
        theirs = nbformat.read(course / "release" / chapter.stem / chapter.notebook.name, as_version=4)
        ours = student_version(chapter)
        assert len(ours.cells) == len(theirs.cells), chapter.stem
        for index, (mine, nbg) in enumerate(zip(ours.cells, theirs.cells, strict=True)):
            where = f"{chapter.stem} cell {index}"
            assert (mine.cell_type, mine.source, mine.metadata) == (nbg.cell_type, nbg.source,
                                                                    nbg.metadata), where
            if is_grade(mine) or is_solution(mine):  # nbgrader clears every output; we keep the lesson's
                assert mine.outputs == nbg.outputs == [], where
            compared += 1
    assert compared > 100


def test_scores_equal_nbgraders(nbgrader, tmp_path):
    """A full, an empty and a half-done submission of the book's quickest chapter."""
    run, course, env = nbgrader
    report = load(ROOT, REPORT_JSON)["chapters"]
    chapter = min(CHAPTERS, key=lambda c: report.get(c.stem, {}).get("wall_s", 1e9))
    book, student = read_notebook(chapter), student_version(chapter)
    first = next(c for c in book.cells if is_solution(c))
    half = nbformat.from_dict(student)
    next(c for c in half.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
         == first.metadata.nbgrader.grade_id).source = first.source
    submissions = {"alice": book, "bob": student, "carol": half}
    if not (course / "source" / chapter.stem).exists():
        (course / "source" / chapter.stem).mkdir(parents=True)
        nbformat.write(book, course / "source" / chapter.stem / chapter.notebook.name)
        header = course / f"{chapter.stem}.header.ipynb"
        nbformat.write(header_notebook(chapter), header)
        run("generate_assignment", chapter.stem, f"--IncludeHeaderFooter.header={header}", "--force")
    ours_dir = tmp_path / "submissions"
    for name, notebook in submissions.items():
        folder = course / "submitted" / name / chapter.stem
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / chapter.notebook.name)
        (ours_dir / name).mkdir(parents=True)
        nbformat.write(notebook, ours_dir / name / chapter.notebook.name)
        run("db", "student", "add", name)
    run("autograde", chapter.stem)
    dumped = subprocess.run([str(VENV / "bin" / "python"), "-c", SCORES_SCRIPT,
                             str(course / "gradebook.db"), chapter.stem, *submissions],
                            capture_output=True, text=True, check=True, env=env, timeout=120)
    theirs = json.loads(dumped.stdout)
    previous = Path.cwd()
    os.chdir(ROOT)
    try:
        assert main(["grade", *[str(ours_dir / n / chapter.notebook.name) for n in submissions],
                     "--out", str(tmp_path / "graded"), "--jobs", "2"]) == 0
    finally:
        os.chdir(previous)
    ours = {r["student"]: r for r in json.loads((tmp_path / "graded" / "gradebook.json").read_text())}
    for name in submissions:
        per_exercise: dict[str, float] = {}
        for grade_id, points in theirs[name].items():
            exercise = str(int(grade_id.split("-ex")[1].split("-")[0]))
            per_exercise[exercise] = per_exercise.get(exercise, 0.0) + points
        assert ours[name]["exercises"] == per_exercise, name
    assert ours["alice"]["total"] == ours["alice"]["max"] > 0  # the book's notebook: full marks
    assert ours["bob"]["total"] == 0  # the untouched student version
    assert 0 < ours["carol"]["total"] < ours["carol"]["max"]  # the first exercise only
