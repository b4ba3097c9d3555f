"""``dlbook sync``: chapter sources → notebooks, keeping outputs of cells whose source is unchanged.

Every notebook sync writes records the fingerprint of each of its cells (``metadata.dlbook.cells``).
A notebook whose cells no longer match that record was edited after sync — by hand, in Jupyter —
and sync refuses to overwrite it, naming the file and the cell, rather than lose the edit.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from dlbook.engine.chapters import (
    INSTALL_TAG,
    UI_METADATA,
    Chapter,
    DlbookError,
    all_chapters,
    build_notebook,
    fingerprint,
    settings,
)


class HandEditError(DlbookError):
    """A notebook was changed outside ``dlbook sync``; overwriting it would lose that change."""


@dataclass(frozen=True)
class SyncResult:
    chapter: Chapter
    status: str  # "created", "updated" or "unchanged"
    kept: int  # code cells whose stored outputs were kept
    cleared: int  # code cells that are new or changed, so have no outputs until `dlbook run`


def code_fingerprint(notebook) -> str:
    """One hash of every code cell's source, in order: what `dlbook run` executed. The generated
    Colab install cell is left out: it does nothing off Colab, so a run or a seed sweep stays
    current when only the repository it names changes."""
    codes = [fingerprint(c) for c in notebook.cells
             if c.cell_type == "code" and INSTALL_TAG not in c.metadata.get("tags", [])]
    return hashlib.sha256("".join(codes).encode()).hexdigest()[:16]


def write_atomically(notebook, path: Path) -> None:
    """Write a notebook so that an interrupted write never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            nbformat.write(notebook, stream)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_notebook(chapter: Chapter):
    rel = chapter.notebook.relative_to(chapter.root)
    try:
        return nbformat.read(chapter.notebook, as_version=4)
    except FileNotFoundError:
        raise DlbookError(f"{rel}: missing; run `dlbook sync {chapter.stem}` to create it") from None
    except Exception as error:  # nbformat raises JSON and validation errors of several kinds
        raise DlbookError(f"{rel}: not a readable notebook ({error})") from None


def find_hand_edit(chapter: Chapter, notebook) -> str | None:
    """Describe the first cell changed since the last sync, or None if the notebook is as synced."""
    rel = chapter.notebook.relative_to(chapter.root)
    recorded = notebook.metadata.get("dlbook", {}).get("cells")
    if recorded is None:
        return f"{rel} was not written by `dlbook sync` (no cell record in its metadata)"
    current = [fingerprint(c) for c in notebook.cells]
    if current == recorded:
        return None
    for index, (now, then) in enumerate(zip(current, recorded, strict=False)):
        if now != then:
            cell = notebook.cells[index]
            first_line = (cell.source.strip().splitlines() or [""])[0][:60]
            return f"{rel}: cell {index} ({cell.cell_type}: {first_line!r}) was edited by hand"
    return f"{rel}: cells were added or removed by hand ({len(recorded)} → {len(current)})"


def _carry_outputs(old, new) -> None:
    """Copy outputs from old cells to identical new cells, matched in order."""
    old_prints = [fingerprint(c) for c in old.cells]
    new_prints = [fingerprint(c) for c in new.cells]
    matcher = difflib.SequenceMatcher(a=old_prints, b=new_prints, autojunk=False)
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            source, target = old.cells[block.a + offset], new.cells[block.b + offset]
            if target.cell_type == "code":
                target.outputs = source.get("outputs", [])
                target.execution_count = source.get("execution_count")


def expected_notebook(chapter: Chapter, previous=None):
    """The notebook sync would write: built from the source, outputs carried from ``previous``."""
    notebook = build_notebook(chapter)
    notebook.metadata["dlbook"]["cells"] = [fingerprint(c) for c in notebook.cells]
    if previous is not None:
        _carry_outputs(previous, notebook)
        executed = previous.metadata.get("dlbook", {}).get("executed")
        if executed is not None:
            notebook.metadata["dlbook"]["executed"] = executed
    return notebook


def sync_chapter(chapter: Chapter, force: bool = False) -> SyncResult:
    """Bring one chapter's notebook in line with its source."""
    previous = None
    if chapter.notebook.exists():
        previous = read_notebook(chapter)
        edit = find_hand_edit(chapter, previous)
        if edit is not None and not force:
            raise HandEditError(
                f"{edit}. Move the change into {chapter.source.relative_to(chapter.root)} "
                "(the source of truth), or pass --force to discard it."
            )
    notebook = expected_notebook(chapter, previous)
    codes = [c for c in notebook.cells if c.cell_type == "code"]
    kept = sum(1 for c in codes if c.execution_count is not None)
    cleared = len(codes) - kept
    if previous is not None and nbformat.writes(previous) == nbformat.writes(notebook):
        return SyncResult(chapter, "unchanged", kept, cleared)
    write_atomically(notebook, chapter.notebook)
    return SyncResult(chapter, "updated" if previous else "created", kept, cleared)


def _as_compared(notebook) -> str:
    """The notebook's text without UI state (a collapsed output is not a difference)."""
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        for key in UI_METADATA & set(cell.metadata):
            del cell.metadata[key]
    return nbformat.writes(copy)


def drift(chapter: Chapter) -> str | None:
    """Why the notebook does not match its source, or None if `dlbook sync` would change nothing."""
    rel = chapter.notebook.relative_to(chapter.root)
    if not chapter.notebook.exists():
        return f"{rel}: missing (run `dlbook sync {chapter.stem}`)"
    try:
        notebook = read_notebook(chapter)
    except DlbookError as error:
        return str(error)
    edit = find_hand_edit(chapter, notebook)
    if edit is not None:
        return edit
    expected = expected_notebook(chapter, notebook)
    if _as_compared(expected) != _as_compared(notebook):
        return f"{rel}: out of date with {chapter.source.relative_to(chapter.root)} (run `dlbook sync`)"
    return None


def execution_problem(chapter: Chapter) -> str | None:
    """Why the stored outputs do not come from running the current code, or None if they do."""
    rel = chapter.notebook.relative_to(chapter.root)
    notebook = read_notebook(chapter)
    unrun = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.execution_count is None]
    if unrun:
        return f"{rel}: code cells {unrun} were never executed (run `dlbook run {chapter.stem}`)"
    if notebook.metadata.get("dlbook", {}).get("executed") != code_fingerprint(notebook):
        return f"{rel}: outputs come from older code (run `dlbook run {chapter.stem}`)"
    return None


README_START = "<!-- chapters: written by `dlbook sync` from chapters/; do not edit by hand -->"
README_END = "<!-- /chapters -->"


def chapter_table(root: Path) -> str:
    """The README's table of chapters, with each notebook's GitHub and Colab links."""
    config = settings(root)
    colab = ("https://colab.research.google.com/github/"
             f"{config['repository'].removeprefix('https://github.com/')}/blob/{config['branch']}")
    rows = ["| # | chapter | notebook | Colab |", "|---|---------|----------|-------|"]
    for chapter in all_chapters(root):
        title = chapter.title().split(". ", 1)[-1]
        link = f"notebooks/{chapter.notebook.name}"
        rows.append(f"| {chapter.number} | {title} | [{link}]({link}) | "
                    f"[open in Colab]({colab}/{link}) |")
    return "\n".join(rows)


def readme_with_table(root: Path) -> tuple[str, str]:
    """(README as it is, README as sync writes it) — the chapter table between its markers."""
    path = root / "README.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if README_START not in text or README_END not in text:
        return text, text  # a README without the markers is left alone
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    return text, f"{before}{README_START}\n{chapter_table(root)}\n{README_END}{after}"


def sync_readme(root: Path) -> bool:
    """Rewrite the README's chapter table from the chapters; True if it changed."""
    current, wanted = readme_with_table(root)
    if current == wanted:
        return False
    from dlbook.data.registry import write_atomically as write_bytes

    write_bytes(root / "README.md", wanted.encode("utf-8"))
    return True


def readme_drift(root: Path) -> str | None:
    current, wanted = readme_with_table(root)
    return None if current == wanted else "README.md: its chapter table is out of date (run `dlbook sync`)"
