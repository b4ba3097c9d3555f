"""``dlbook grade``: score submitted student versions, robustly, as nbgrader would.

For each submission: find its chapter from the notebook's metadata; rebuild the notebook from the
book's own source, taking **only the student's solution cells** (matched by their nbgrader
``grade_id``) — every other cell, the tests and their hidden parts included, comes from the book,
so an edited, deleted, reordered or duplicated cell cannot raise a score; run it in a fresh kernel
with a per-cell time limit (a cell past it is interrupted and the run goes on), a chapter time
limit and a memory limit; score each test cell from its nbgrader points (a test cell fails if it
raises or writes to stderr, nbgrader's rule). Results: a gradebook (CSV and JSON), a Markdown
feedback file per submission (which exercises passed; for each failure the error's type and
message, never a hidden test's source), and the graded notebooks for the instructor. Submissions
are never modified; every file is written atomically; a re-run gives the same gradebook.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from dlbook.engine.assign import (
    HIDDEN_MARKERS,
    clear_solutions,
    is_grade,
    is_solution,
)
from dlbook.engine.chapters import Chapter, DlbookError, all_chapters, build_notebook
from dlbook.engine.runner import Execution, Job, Limits, _signal_name, execute, kernel_environment
from dlbook.engine.sync import write_atomically

MAX_OUTPUT_CHARS = 20_000  # per output kept in a graded notebook and its feedback
GRADE_ID = re.compile(r"^(\d{2}_[a-z0-9_]+)-ex(\d+)-")
TRACEBACK_LINE = re.compile(r"line (\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DEFAULT_GRADING_MEMORY_MIB = 4096


@dataclass
class ExerciseScore:
    exercise: int
    points: float
    max_points: float
    failures: list[str] = field(default_factory=list)


@dataclass
class GradeResult:
    submission: str
    student: str
    chapter: str
    status: str  # graded, timed out, kernel died, memory limit, not a notebook, no chapter, …
    message: str
    exercises: list[ExerciseScore]
    wall_s: float = 0.0

    @property
    def total(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_total(self) -> float:
        return sum(e.max_points for e in self.exercises)


def student_name(path: Path) -> str:
    """``submissions/alice/01_workflow.ipynb`` → ``alice``; ``alice.ipynb`` → ``alice``."""
    if re.match(r"^\d{2}_", path.name) and path.parent.name:
        return path.parent.name
    return path.stem


def chapter_of(notebook) -> str | None:
    """The chapter stem a notebook belongs to: its dlbook metadata, else its nbgrader ids."""
    source = notebook.get("metadata", {}).get("dlbook", {}).get("source", "")
    match = re.match(r"^chapters/(\d{2}_[a-z0-9_]+)\.md$", source)
    if match:
        return match.group(1)
    for cell in notebook.get("cells", []):
        found = GRADE_ID.match(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))
        if found:
            return found.group(1)
    return None


def _exercise(cell) -> int:
    return int(GRADE_ID.match(cell.metadata["nbgrader"]["grade_id"]).group(2))


def assemble(book, submission) -> tuple[object, list[str]]:
    """The notebook to run: the book's cells, with the student's solution cells spliced in."""
    answers: dict[str, str] = {}
    notes = []
    for cell in submission.get("cells", []):
        nbgrader = cell.get("metadata", {}).get("nbgrader", {})
        if nbgrader.get("solution") and "grade_id" in nbgrader:
            if nbgrader["grade_id"] in answers:
                notes.append(f"solution cell {nbgrader['grade_id']} appears more than once; "
                             "the first one was graded")
                continue
            source = cell.get("source", "")
            answers[nbgrader["grade_id"]] = "".join(source) if isinstance(source, list) else source
    notebook = nbformat.from_dict(book)
    for cell in notebook.cells:
        if is_solution(cell):
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            if grade_id in answers:
                cell.source = answers[grade_id]
            else:
                cell.source = clear_solutions(cell.source, cell.cell_type)
                notes.append(f"exercise {_exercise(cell)}: the solution cell is missing from the "
                             "submission; graded as not answered")
    return notebook, notes


def _hidden_lines(source: str) -> set[int]:
    """1-based line numbers inside a hidden-test region (markers included)."""
    lines, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if HIDDEN_MARKERS[0] in line:
            inside = True
        if inside:
            lines.add(number)
        if HIDDEN_MARKERS[1] in line:
            inside = False
    return lines


def _failure(cell) -> str | None:
    """Why a code cell failed (nbgrader: an error, or anything written to stderr), or None."""
    if cell.execution_count is None:
        return "not run"
    for output in cell.outputs:
        if output.output_type == "error":
            return f"{output.ename}: {ANSI.sub('', output.evalue)}".rstrip(": ").strip() or output.ename
        if output.output_type == "stream" and output.name == "stderr":
            return f"it wrote to stderr: {output.text.strip()[:200]}"
    return None


def _failed_line(cell) -> int | None:
    for output in cell.outputs:
        if output.output_type == "error":
            for frame in reversed(output.get("traceback", [])):
                if "Cell In[" in ANSI.sub("", frame):
                    match = TRACEBACK_LINE.search(ANSI.sub("", frame))
                    if match:
                        return int(match.group(1))
    return None


def score(notebook, stop: str = "") -> list[ExerciseScore]:
    """Points per exercise from the executed notebook's test cells; ``stop`` explains cells not run."""
    exercises: dict[int, ExerciseScore] = {}
    for cell in notebook.cells:
        if not (is_grade(cell) or is_solution(cell)) or cell.cell_type != "code":
            continue
        number = _exercise(cell)
        entry = exercises.setdefault(number, ExerciseScore(number, 0.0, 0.0))
        failure = _failure(cell)
        if failure == "not run" and stop:
            failure = f"not run ({stop})"
        if failure and failure.startswith("KeyboardInterrupt"):
            failure = "it ran past the per-cell time limit and was interrupted by the grader"
        if is_solution(cell):
            if failure and failure.startswith("NotImplementedError"):
                entry.failures.append("not answered yet (the solution cell still raises "
                                      "NotImplementedError)")
            elif failure:
                entry.failures.append(f"your solution cell failed: {failure}")
            continue
        points = float(cell.metadata["nbgrader"].get("points", 0))
        entry.max_points += points
        if failure is None:
            entry.points += points
            continue
        line = _failed_line(cell)
        hidden = line is None or line in _hidden_lines(cell.source)
        kind = "a hidden test" if hidden else "a visible test"
        if failure.startswith("NotImplementedError"):
            failure += " (your solution still has the stub: not answered yet)"
        entry.failures.append(f"{kind} failed: {failure}")
    return [exercises[n] for n in sorted(exercises)]


def _truncate_outputs(notebook) -> None:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and len(output.get("text", "")) > MAX_OUTPUT_CHARS:
                cut = len(output.text) - MAX_OUTPUT_CHARS
                output.text = output.text[:MAX_OUTPUT_CHARS] + f"\n[… {cut:,} characters cut by the grader]\n"


def _status(run: Execution, limits: Limits) -> tuple[str, str]:
    if run.error is None:
        return "graded", ""
    if run.watch.reason == "chapter":
        return "timed out", f"the run passed the chapter limit of {limits.chapter_s:.0f} s"
    if run.watch.reason == "memory":
        # (no peak figure: it varies from run to run, and the gradebook must not)
        return "memory limit", f"the kernel went over {limits.memory_mib:.0f} MiB and was stopped"
    from nbclient.exceptions import DeadKernelError

    if isinstance(run.error, DeadKernelError):
        return "kernel died", f"the kernel died ({_signal_name(run.returncode)})"
    return "grader error", f"{type(run.error).__name__}: {run.error}"


def grade_submission(path: str, root: str, expected_chapter: str | None, out: str, *,
                     limits: Limits, threads: int) -> GradeResult:
    """Grade one submission (run in a worker by :func:`grade_jobs`)."""
    submission_path, book_root, out_dir = Path(path), Path(root), Path(out)
    student = student_name(submission_path)

    def refused(status: str, message: str, chapter: str = "") -> GradeResult:
        return GradeResult(path, student, chapter, status, message, [])

    try:
        submission = nbformat.reads(submission_path.read_text(encoding="utf-8"), as_version=4)
    except Exception as error:  # nbformat and json raise many kinds; all mean "not a notebook"
        return refused("not a notebook", f"{submission_path.name} cannot be read as a notebook "
                       f"({type(error).__name__})")
    stem = chapter_of(submission)
    chapters = {c.stem: c for c in all_chapters(book_root)}
    if stem is None:
        return refused("no chapter", "the notebook names no chapter of the book (no dlbook or "
                       "nbgrader metadata): was it made with `dlbook assign`?")
    if stem not in chapters:
        return refused("unknown chapter", f"the notebook is for chapter {stem}, which this book "
                       "does not have", stem)
    if expected_chapter and stem != expected_chapter:
        return refused("wrong chapter", f"the notebook is chapter {stem}'s, not {expected_chapter}'s",
                       stem)
    chapter: Chapter = chapters[stem]
    notebook, notes = assemble(build_notebook(chapter), submission)
    with tempfile.TemporaryDirectory(prefix="dlbook-grade-") as workdir:
        run = execute(notebook, Path(workdir), kernel_environment(threads), limits,
                      out_dir / "logs" / f"{student}.{stem}.kernel.log", allow_errors=True)
    status, message = _status(run, limits)
    exercises = score(notebook, stop=message)
    _truncate_outputs(notebook)
    graded = out_dir / "graded" / f"{student}.{stem}.ipynb"
    write_atomically(notebook, graded)
    return GradeResult(path, student, stem, status, "; ".join([message, *notes]).strip("; "),
                       exercises, round(run.wall_s, 1))


def _lost(path: Path, message: str) -> GradeResult:
    return GradeResult(str(path), student_name(path), "", "grader error", message, [])


def grade_jobs(submissions: list[Path], root: Path, chapter: str | None, out: Path) -> list[Job]:
    return [Job(str(path), grade_submission, (str(path), str(root), chapter, str(out)),
                functools.partial(_lost, path)) for path in submissions]


def resolve_chapter(root: Path, name: str | None) -> str | None:
    if name is None:
        return None
    from dlbook.engine.chapters import resolve

    return resolve(root, [name])[0].stem


def mark_duplicates(results: list[GradeResult]) -> None:
    """Two submissions of one chapter under one student name: both graded, both flagged."""
    seen: dict[tuple[str, str], list[GradeResult]] = {}
    for result in results:
        if result.chapter:
            seen.setdefault((result.student, result.chapter), []).append(result)
    for group in seen.values():
        if len(group) > 1:
            for result in group:
                others = ", ".join(r.submission for r in group if r is not result)
                result.message = "; ".join(filter(None, [
                    f"the same student name also submitted {others}: both graded, decide which "
                    f"counts (grading status: {result.status})", result.message]))
                result.status = "duplicate"


def _rows(results: list[GradeResult]) -> list[dict]:
    rows = []
    for result in sorted(results, key=lambda r: (r.student, r.chapter, r.submission)):
        rows.append({
            "student": result.student, "chapter": result.chapter, "submission": result.submission,
            "status": result.status,
            "exercises": {str(e.exercise): e.points for e in result.exercises},
            "total": result.total, "max": result.max_total, "message": result.message,
        })
    return rows


def feedback(result: GradeResult, title: str) -> str:
    """The Markdown a student receives: score, then what passed and why the rest did not."""
    lines = [f"# Feedback: {title}", "", f"Student: {result.student}  ",
             f"Submission: `{Path(result.submission).name}`  ",
             f"Score: **{result.total:g} / {result.max_total:g}**" if result.exercises
             else f"Score: **0** — {result.status}", ""]
    if result.message:
        lines += [f"Note: {result.message}", ""]
    if result.exercises:
        lines += ["| exercise | points | result |", "|---|---|---|"]
        for exercise in result.exercises:
            passed = not exercise.failures and exercise.points == exercise.max_points
            lines.append(f"| {exercise.exercise} | {exercise.points:g} / {exercise.max_points:g} | "
                         f"{'passed' if passed else 'not yet'} |")
        for exercise in result.exercises:
            if exercise.failures:
                lines += ["", f"## Exercise {exercise.exercise}", ""]
                lines += [f"- {failure}" for failure in exercise.failures]
    return "\n".join(lines) + "\n"


def write_results(results: list[GradeResult], root: Path, out: Path) -> None:
    """The gradebook (``gradebook.json``, ``gradebook.csv``) and ``feedback/*.md``."""
    titles = {c.stem: c.title() for c in all_chapters(root)}
    rows = _rows(results)
    exercise_numbers = sorted({int(n) for row in rows for n in row["exercises"]})
    write_atomically_text(out / "gradebook.json", json.dumps(rows, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "chapter", "submission", "status",
                     *[f"exercise {n}" for n in exercise_numbers], "total", "max", "message"])
    for row in rows:
        writer.writerow([row["student"], row["chapter"], row["submission"], row["status"],
                         *[row["exercises"].get(str(n), "") for n in exercise_numbers],
                         row["total"], row["max"], row["message"]])
    write_atomically_text(out / "gradebook.csv", buffer.getvalue())
    names: dict[str, int] = {}
    for result in sorted(results, key=lambda r: (r.student, r.chapter, r.submission)):
        base = f"{result.student}.{result.chapter or 'unknown'}"
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base}.{names[base]}"
        title = titles.get(result.chapter, result.chapter or "unknown chapter")
        write_atomically_text(out / "feedback" / f"{name}.md", feedback(result, title))


def write_atomically_text(path: Path, text: str) -> None:
    from dlbook.data.registry import write_atomically as write_bytes

    write_bytes(path, text.encode("utf-8"))


def check_submissions(paths: list[str]) -> list[Path]:
    submissions = [Path(p) for p in paths]
    missing = [str(p) for p in submissions if not p.is_file()]
    if missing:
        raise DlbookError(f"no such submission file: {', '.join(missing)}")
    return submissions
