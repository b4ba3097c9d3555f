"""``dlbook assign``: the student version of a chapter, cell for cell what nbgrader would make.

From the committed, executed notebook: each region between ``### BEGIN SOLUTION`` and ``### END
SOLUTION`` becomes nbgrader's stub (``# YOUR CODE HERE`` / ``raise NotImplementedError()``, at the
region's indentation), hidden tests (``### BEGIN HIDDEN TESTS`` … ``### END HIDDEN TESTS``) are
removed, exercise cells lose their outputs, cells are locked and checksummed as nbgrader's
``generate_assignment`` does (so nbgrader can grade the result too), and a header cell says how to
check one's work. Unlike nbgrader, the lesson keeps its outputs and figures: a reader works through
the chapter, not an empty notebook.

Before writing, every student version is scanned for leaks (:func:`leaks`): a line of a solution
or of a hidden test that appears anywhere in it — a cell, an output, the metadata — is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nbformat

from dlbook.engine.chapters import BEGIN_SOLUTION, END_SOLUTION, Chapter, DlbookError
from dlbook.engine.sync import drift, execution_problem, read_notebook, write_atomically

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
# nbgrader's own marker test is "contains BEGIN SOLUTION" (without the ###): mirror it exactly.
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
MIN_LEAK_LENGTH = 12  # shorter lines ("return x", "pass") are too common to count as a leak


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell) -> bool:
    return bool(_nbgrader(cell).get("solution", False))


def is_grade(cell) -> bool:
    return bool(_nbgrader(cell).get("grade", False))


def is_locked(cell) -> bool:
    """nbgrader's rule: grade cells are locked, solution cells never, others if marked."""
    if not _nbgrader(cell) or is_solution(cell):
        return False
    return is_grade(cell) or bool(_nbgrader(cell).get("locked", False))


def clear_solutions(source: str, cell_type: str = "code") -> str:
    """Replace each solution region by the stub, indented like its BEGIN line (nbgrader's rule)."""
    stub = (CODE_STUB if cell_type == "code" else TEXT_STUB).split("\n")
    lines, inside, replaced = [], False, False
    for line in source.split("\n"):
        if SOLUTION_MARKERS[0] in line:
            if inside:
                raise DlbookError(f"nested {BEGIN_SOLUTION} in a cell starting {source[:60]!r}")
            inside = replaced = True
            indent = re.match(r"\s*", line).group(0)
            lines += [indent + stub_line for stub_line in stub]
        elif SOLUTION_MARKERS[1] in line:
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise DlbookError(f"{BEGIN_SOLUTION} without {END_SOLUTION} in a cell starting {source[:60]!r}")
    # A solution cell without a marked region is replaced whole, as nbgrader does.
    return "\n".join(lines) if replaced else "\n".join(stub)


def remove_hidden_tests(source: str) -> str:
    """Drop every hidden-test region, markers included (nbgrader's ClearHiddenTests)."""
    lines, inside = [], False
    for line in source.split("\n"):
        if HIDDEN_MARKERS[0] in line:
            inside = True
        elif HIDDEN_MARKERS[1] in line:
            inside = False
        elif not inside:
            lines.append(line)
    return "\n".join(lines)


def checksum(cell) -> str:
    """nbgrader's cell checksum (``nbgrader.utils.compute_checksum``), so it accepts our files."""
    digest = hashlib.md5()
    for part in (cell.source, cell.cell_type, str(is_grade(cell)), str(is_solution(cell)),
                 str(is_locked(cell)), _nbgrader(cell)["grade_id"]):
        digest.update(part.encode("utf-8"))
    if is_grade(cell):
        digest.update(str(float(_nbgrader(cell)["points"])).encode("utf-8"))
    return digest.hexdigest()


def _lock(cell) -> None:
    """nbgrader's LockCells with its default settings."""
    if is_solution(cell):
        cell.metadata["deletable"] = False
    elif is_grade(cell) or is_locked(cell):
        cell.metadata["deletable"] = False
        cell.metadata["editable"] = False


def header_notebook(chapter: Chapter):
    """The one-cell notebook put before every student version (also nbgrader's header file)."""
    text = (
        f"**Exercise version of chapter {chapter.number}: {chapter.title()}**\n\n"
        "The solutions of this chapter's exercises are replaced by `# YOUR CODE HERE` and "
        "`raise NotImplementedError()`, and some of their tests are hidden: the grader puts "
        "them back. The lesson's outputs and figures are as in the book.\n\n"
        "**How to check your work:** run the notebook from the top (*Restart & Run All*). Each "
        "exercise is followed by a test cell; when it runs without an error, your answer passes "
        "the visible tests. Do not edit or delete the test cells or the lesson's cells: the "
        "grader restores them from the book, and only your solution cells count. Hand in this "
        "file under its own name."
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    notebook.cells[0].id = f"{chapter.stem}-header"[:64]
    return notebook


def student_version(chapter: Chapter):
    """The student version of a chapter's committed notebook (see the module docstring)."""
    problem = drift(chapter) or execution_problem(chapter)
    if problem:
        raise DlbookError(f"{problem}; the student version is made from the executed notebook")
    book = read_notebook(chapter)
    notebook = nbformat.from_dict(book)
    for cell in notebook.cells:
        if not _nbgrader(cell):
            continue
        if is_solution(cell):
            cell.source = clear_solutions(cell.source, cell.cell_type)
        if is_grade(cell):
            cell.source = remove_hidden_tests(cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        _lock(cell)
        if is_grade(cell) or is_solution(cell) or is_locked(cell):
            cell.metadata["nbgrader"]["checksum"] = checksum(cell)
            cell.metadata["nbgrader"]["cell_type"] = cell.cell_type
    notebook.cells = header_notebook(chapter).cells + notebook.cells
    notebook.metadata["dlbook"] = {"source": book.metadata["dlbook"]["source"],
                                   "student_version": True}
    found = leaks(book, notebook)
    if found:
        raise DlbookError(f"{chapter.stem}: the student version would give away the "
                          f"{found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
    return notebook


def _region_lines(source: str, begin: str, end: str) -> list[str]:
    lines, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line.strip())
    return lines


def secret_lines(book) -> dict[str, str]:
    """Lines of the book's solutions and hidden tests that a student version must not contain.

    A line the book also shows openly — in a lesson cell, a visible test, or outside the solution
    region of a solution cell — is not a secret; one shorter than :data:`MIN_LEAK_LENGTH` is too
    common to count.
    """
    public = {line.strip() for cell in book.cells
              for line in _outside_regions(cell.source).split("\n")}
    secrets = {}
    for cell in book.cells:
        for line in _region_lines(cell.source, *SOLUTION_MARKERS):
            secrets.setdefault(line, f"solution of {_nbgrader(cell).get('grade_id')}")
        for line in _region_lines(cell.source, *HIDDEN_MARKERS):
            secrets.setdefault(line, f"hidden test of {_nbgrader(cell).get('grade_id')}")
    return {line: what for line, what in secrets.items()
            if len(line) >= MIN_LEAK_LENGTH and line not in public}


def _outside_regions(source: str) -> str:
    kept, inside = [], False
    for line in source.split("\n"):
        if SOLUTION_MARKERS[0] in line or HIDDEN_MARKERS[0] in line:
            inside = True
        elif SOLUTION_MARKERS[1] in line or HIDDEN_MARKERS[1] in line:
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def leaks(book, student) -> list[str]:
    """What of ``book``'s secrets ``student`` gives away: each hidden test any of whose lines
    appears in it, and each solution half or more of whose lines do — in a cell, an output
    (a ``dlbook.show`` of library code that contains the answer, say) or the metadata.

    (A solution sharing a line or two of boilerplate with code the lesson shows is not a leak.)
    """
    places = []
    for index, cell in enumerate(student.cells):
        places.append((f"cell {index} source", cell.source))
        for output in cell.get("outputs", []):
            text = output.get("text", "") + json.dumps(output.get("data", {}))
            places.append((f"cell {index} output", text.replace("\\n", "\n")))
        places.append((f"cell {index} metadata", json.dumps(cell.get("metadata", {}))))
    places.append(("notebook metadata", json.dumps(student.metadata)))
    by_secret: dict[str, list[str]] = {}
    for line, what in secret_lines(book).items():
        by_secret.setdefault(what, [])
        where = next((where for where, text in places if line in text), None)
        if where is not None:
            by_secret[what].append(f"{line!r} in {where}")
    totals = {what: sum(1 for w in secret_lines(book).values() if w == what) for what in by_secret}
    found = []
    for what, seen in by_secret.items():
        hidden = what.startswith("hidden test")
        if seen and (hidden or 2 * len(seen) >= totals[what]):
            found.append(f"{what}: {len(seen)} of its {totals[what]} lines, e.g. {seen[0]}")
    return found


def write_student_versions(chapters: list[Chapter], out: Path) -> list[Path]:
    """Write ``out/NN_slug.ipynb`` for each chapter; return the paths written."""
    written = []
    for chapter in chapters:
        target = out / chapter.notebook.name
        write_atomically(student_version(chapter), target)
        written.append(target)
    return written
