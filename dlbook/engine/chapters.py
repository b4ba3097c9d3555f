"""Chapters: where they live, how their MyST sources are read, and how a source becomes a notebook.

A chapter is one file ``chapters/NN_slug.md`` (jupytext's MyST format) and its generated notebook
``notebooks/NN_slug.ipynb``. Adding a chapter means adding one such file; nothing here lists them.

Exercise cells are marked in the source with a tag, and the notebook gets the nbgrader (schema 3)
metadata derived from it, so authors never write nbgrader metadata by hand::

    ```{code-cell} ipython3
    :tags: [solution]

    def f(x):
        ### BEGIN SOLUTION
        return 2 * x
        ### END SOLUTION
    ```

    ```{code-cell} ipython3
    :tags: [tests]

    assert f(2) == 4
    ```
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

CHAPTER_FILE = re.compile(r"^(\d{2})_([a-z0-9_]+)\.md$")
SOLUTION_TAG = "solution"
TESTS_TAG = "tests"
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


INSTALL_TAG = "colab-install"


class DlbookError(Exception):
    """An error with a message meant for the person at the command line (no traceback)."""


class SourceError(DlbookError):
    """A chapter source that cannot be turned into a notebook."""


@dataclass(frozen=True)
class Chapter:
    """One chapter of the book: its source, its notebook, and how people refer to it."""

    root: Path
    stem: str  # e.g. "01_workflow"

    @property
    def number(self) -> int:
        return int(self.stem[:2])

    @property
    def slug(self) -> str:
        return self.stem[3:]

    @property
    def source(self) -> Path:
        return self.root / "chapters" / f"{self.stem}.md"

    @property
    def notebook(self) -> Path:
        return self.root / "notebooks" / f"{self.stem}.ipynb"

    def title(self) -> str:
        """The chapter's first level-1 heading, or its file name if it has none yet."""
        for line in self.source.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
        return self.stem


def find_root(start: Path | None = None) -> Path:
    """The book's root: the nearest folder upwards that has ``chapters/`` and ``pyproject.toml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "chapters").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    raise DlbookError(
        f"no book found at or above {here}: run dlbook inside the repository "
        "(the folder with chapters/ and pyproject.toml)"
    )


def settings(root: Path) -> dict:
    """``[tool.dlbook]`` of pyproject.toml: ``repository`` (https://github.com/OWNER/NAME), ``branch``."""
    try:
        table = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("dlbook", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise DlbookError(f"pyproject.toml cannot be read: {error}") from None
    repository = table.get("repository", "")
    if not repository.startswith("https://github.com/") or repository.count("/") != 4:
        raise DlbookError("pyproject.toml needs [tool.dlbook] repository = "
                          f"\"https://github.com/OWNER/NAME\", got {repository!r}")
    return {"repository": repository.rstrip("/"), "branch": table.get("branch", "main")}


def install_cell(root: Path):
    """The code cell every notebook starts with: on Colab, install the book's package (keeping
    Colab's TensorFlow and Keras, which satisfy its requirements); anywhere else, nothing."""
    source = (
        "# On Colab, install the book's package first (Colab's TensorFlow and Keras are kept);\n"
        "# anywhere else this cell does nothing.\n"
        "import sys\n\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\",\n"
        f"                    \"dlbook @ git+{settings(root)['repository']}\"], check=True)"
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [INSTALL_TAG]
    return cell


def all_chapters(root: Path) -> list[Chapter]:
    """Every chapter source in ``chapters/``, in book order."""
    chapters = []
    for path in sorted((root / "chapters").glob("*.md")):
        if not CHAPTER_FILE.match(path.name):
            raise SourceError(
                f"{path.relative_to(root)}: chapter files are named NN_slug.md "
                "(two digits, underscore, lower-case slug), e.g. 01_workflow.md"
            )
        chapters.append(Chapter(root, path.stem))
    numbers = [c.number for c in chapters]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise SourceError(f"two chapter sources share the number(s) {duplicates}")
    return chapters


def resolve(root: Path, names: list[str] | None) -> list[Chapter]:
    """The chapters named on a command line: by stem (01_workflow), number (1, 01) or slug.

    No names means every chapter.
    """
    chapters = all_chapters(root)
    if not names:
        return chapters
    chosen: list[Chapter] = []
    for name in names:
        key = Path(name).stem  # accept chapters/01_workflow.md and notebooks/01_workflow.ipynb
        matches = [
            c
            for c in chapters
            if key in (c.stem, c.slug) or (key.isdigit() and int(key) == c.number)
        ]
        if not matches:
            known = ", ".join(c.stem for c in chapters) or "none"
            raise DlbookError(f"unknown chapter {name!r}; chapters are: {known}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _check_fences(path: Path, text: str) -> None:
    """Fail on a code cell that is not closed, which jupytext would silently read as prose or as
    part of the next cell."""
    opened_at = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("```{code-cell}"):
            if opened_at is not None:
                raise SourceError(
                    f"{path}:{opened_at}: code cell is not closed with ``` before the next code "
                    f"cell starts at line {number}"
                )
            opened_at = number
        elif opened_at is not None and stripped == "```":
            opened_at = None
    if opened_at is not None:
        raise SourceError(f"{path}:{opened_at}: code cell is never closed with ```")


def code_cell_lines(text: str) -> list[int]:
    """The 1-based line of each code cell's opening fence in a chapter source, in order."""
    return [number for number, line in enumerate(text.splitlines(), start=1)
            if line.strip().startswith("```{code-cell}")]


def source_location(chapter: Chapter, notebook, cell_index: int) -> str | None:
    """``chapters/NN_slug.md:LINE`` of a notebook code cell, or None if it cannot be told."""
    def from_source(cell) -> bool:  # the install cell is generated, not in the source
        return cell.cell_type == "code" and INSTALL_TAG not in cell.metadata.get("tags", [])

    if not 0 <= cell_index < len(notebook.cells) or not from_source(notebook.cells[cell_index]):
        return None
    ordinal = sum(1 for c in notebook.cells[:cell_index] if from_source(c))
    try:
        lines = code_cell_lines(chapter.source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    if ordinal >= len(lines):
        return None
    return f"{chapter.source.relative_to(chapter.root)}:{lines[ordinal]}"


def _check_exercise_cell(path: Path, index: int, cell) -> None:
    tags = cell.metadata.get("tags", [])
    where = f"{path}: cell {index}"
    has_solution = BEGIN_SOLUTION in cell.source or END_SOLUTION in cell.source
    has_hidden = BEGIN_HIDDEN in cell.source or END_HIDDEN in cell.source
    if SOLUTION_TAG in tags and TESTS_TAG in tags:
        raise SourceError(f"{where}: a cell is either a solution or tests, not both")
    if SOLUTION_TAG in tags:
        if cell.cell_type != "code":
            raise SourceError(f"{where}: only code cells can be tagged {SOLUTION_TAG!r}")
        if not (BEGIN_SOLUTION in cell.source and END_SOLUTION in cell.source):
            raise SourceError(
                f"{where}: a {SOLUTION_TAG!r} cell needs {BEGIN_SOLUTION} and {END_SOLUTION}"
            )
    elif has_solution:
        raise SourceError(f"{where}: solution markers in a cell not tagged {SOLUTION_TAG!r}")
    if has_hidden and TESTS_TAG not in tags:
        raise SourceError(f"{where}: hidden-test markers in a cell not tagged {TESTS_TAG!r}")
    if has_hidden and not (BEGIN_HIDDEN in cell.source and END_HIDDEN in cell.source):
        raise SourceError(f"{where}: {BEGIN_HIDDEN} and {END_HIDDEN} come in pairs")
    if TESTS_TAG in tags and cell.cell_type != "code":
        raise SourceError(f"{where}: only code cells can be tagged {TESTS_TAG!r}")


def read_source(chapter: Chapter):
    """Read and validate a chapter source; return it as a notebook without outputs."""
    path = chapter.source.relative_to(chapter.root)
    try:
        text = chapter.source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such chapter source") from None
    except UnicodeDecodeError as error:
        raise SourceError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not re.match(r"^---\n(.*\n)*?\s+format_name: myst\n(.*\n)*?---\n", text):
        raise SourceError(
            f"{path}: missing the MyST front matter (a '---' block with "
            "'format_name: myst'); copy the header of an existing chapter"
        )
    _check_fences(path, text)
    try:
        notebook = jupytext.reads(text, fmt="md:myst")
    except Exception as error:  # jupytext raises many kinds; all mean "malformed source"
        raise SourceError(f"{path}: jupytext cannot read it: {error}") from None
    if not notebook.cells or not notebook.cells[0].source.startswith("# "):
        raise SourceError(f"{path}: the first cell must be markdown starting with '# Title'")
    for index, cell in enumerate(notebook.cells):
        _check_exercise_cell(path, index, cell)
    return notebook


# Cell metadata that only records how a notebook UI shows or ran a cell: collapsing an output in
# JupyterLab (``jupyter.outputs_hidden``), classic Notebook's ``collapsed`` / ``scrolled``, timings.
UI_METADATA = frozenset({"execution", "collapsed", "scrolled", "jupyter", "ExecuteTime"})


def fingerprint(cell) -> str:
    """A short hash of what a cell *is* (type, source, metadata) — never of its outputs, nor of
    UI state such as a collapsed output (:data:`UI_METADATA`)."""
    metadata = {k: v for k, v in cell.get("metadata", {}).items() if k not in UI_METADATA}
    payload = json.dumps([cell["cell_type"], cell["source"], metadata], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _nbgrader(stem: str, cell, exercise: int) -> dict | None:
    tags = cell.metadata.get("tags", [])
    base = {"schema_version": 3, "task": False}
    if SOLUTION_TAG in tags:
        grade_id = f"{stem}-ex{exercise}-solution"
        return {**base, "grade": False, "grade_id": grade_id, "locked": False, "solution": True}
    if TESTS_TAG in tags:
        grade_id = f"{stem}-ex{exercise}-tests-{cell.id}"
        return {
            **base,
            "grade": True,
            "grade_id": grade_id,
            "locked": True,
            "points": 1,
            "solution": False,
        }
    return None


def build_notebook(chapter: Chapter):
    """The notebook a source should become: cells with stable ids and nbgrader metadata.

    Ids are derived from cell content, so rebuilding an unchanged source gives an identical file.
    """
    notebook = read_source(chapter)
    notebook.metadata = nbformat.from_dict(
        {
            "kernelspec": KERNELSPEC,
            "language_info": {"name": "python"},
            "dlbook": {"source": f"chapters/{chapter.stem}.md"},
        }
    )
    first_code = next((i for i, c in enumerate(notebook.cells) if c.cell_type == "code"),
                      len(notebook.cells))
    notebook.cells.insert(first_code, install_cell(chapter.root))
    seen: dict[str, int] = {}
    exercise = 0
    for cell in notebook.cells:
        base = fingerprint(cell)[:8]
        seen[base] = seen.get(base, 0) + 1
        cell.id = base if seen[base] == 1 else f"{base}-{seen[base]}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            exercise += 1
        grading = _nbgrader(chapter.stem, cell, exercise)
        if grading is not None:
            if exercise == 0:
                raise SourceError(
                    f"{chapter.source.relative_to(chapter.root)}: a {TESTS_TAG!r} cell comes "
                    f"before any {SOLUTION_TAG!r} cell; tests follow the exercise they check"
                )
            cell.metadata["nbgrader"] = grading
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook
