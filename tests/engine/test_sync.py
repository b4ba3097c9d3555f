import json

import nbformat
import pytest

from dlbook.engine.chapters import resolve
from dlbook.engine.sync import (
    HandEditError,
    code_fingerprint,
    drift,
    execution_problem,
    sync_chapter,
)
from tests.engine.helpers import TINY, make_book


@pytest.fixture
def chapter(tmp_path):
    book = make_book(tmp_path / "book", {"01_tiny": TINY})
    return resolve(book, ["1"])[0]


def fake_run(chapter, marker="ran"):
    """Give every code cell an output, as `dlbook run` would, without a kernel."""
    notebook = nbformat.read(chapter.notebook, as_version=4)
    for count, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{marker}\n")]
    notebook.metadata.dlbook.executed = code_fingerprint(notebook)
    nbformat.write(notebook, chapter.notebook)


def test_sync_creates_then_leaves_an_unchanged_notebook_alone(chapter):
    assert sync_chapter(chapter).status == "created"
    before = chapter.notebook.read_bytes()
    result = sync_chapter(chapter)
    assert (result.status, result.kept, result.cleared) == ("unchanged", 0, 4)
    assert chapter.notebook.read_bytes() == before
    assert drift(chapter) is None


def test_sync_keeps_outputs_of_unchanged_cells_only(chapter):
    sync_chapter(chapter)
    fake_run(chapter)
    chapter.source.write_text(chapter.source.read_text().replace("21 * 2", "21 * 3"))
    assert drift(chapter) is not None
    result = sync_chapter(chapter)
    assert (result.status, result.kept, result.cleared) == ("updated", 3, 1)
    cells = [c for c in nbformat.read(chapter.notebook, as_version=4).cells
             if c.cell_type == "code"]
    assert cells[1].outputs == [] and cells[1].execution_count is None  # after the install cell
    assert cells[2].outputs[0].text == "ran\n" and cells[2].execution_count == 3


def test_prose_edits_keep_every_output(chapter):
    sync_chapter(chapter)
    fake_run(chapter)
    chapter.source.write_text(chapter.source.read_text().replace("Some prose.", "Other prose."))
    assert sync_chapter(chapter).kept == 4
    assert execution_problem(chapter) is None


def test_code_edits_make_the_outputs_stale(chapter):
    sync_chapter(chapter)
    fake_run(chapter)
    assert execution_problem(chapter) is None
    chapter.source.write_text(chapter.source.read_text().replace("21 * 2", "21 * 3"))
    sync_chapter(chapter)
    assert "never executed" in execution_problem(chapter)


def test_a_hand_edited_notebook_is_not_overwritten(chapter):
    sync_chapter(chapter)
    notebook = json.loads(chapter.notebook.read_text())
    notebook["cells"][2]["source"] = "x = 5  # changed in Jupyter"
    chapter.notebook.write_text(json.dumps(notebook))
    edited = chapter.notebook.read_text()
    message = r"01_tiny.ipynb: cell 2 \(code: 'x = 5  # changed in Jupyter'\) was edited by hand"
    with pytest.raises(HandEditError, match=message):
        sync_chapter(chapter)
    assert chapter.notebook.read_text() == edited
    assert "edited by hand" in drift(chapter)
    assert sync_chapter(chapter, force=True).status == "updated"
    assert drift(chapter) is None


def test_added_cells_are_a_hand_edit(chapter):
    sync_chapter(chapter)
    notebook = nbformat.read(chapter.notebook, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("y = 1"))
    nbformat.write(notebook, chapter.notebook)
    with pytest.raises(HandEditError, match="cells were added or removed by hand"):
        sync_chapter(chapter)


def test_a_notebook_not_written_by_sync_is_refused(chapter):
    chapter.notebook.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), chapter.notebook)
    with pytest.raises(HandEditError, match="was not written by `dlbook sync`"):
        sync_chapter(chapter)


def test_missing_notebook_is_drift(chapter):
    assert "missing" in drift(chapter)


def test_unreadable_notebook_is_reported(chapter):
    chapter.notebook.parent.mkdir()
    chapter.notebook.write_text("{ not json")
    assert "not a readable notebook" in drift(chapter)


def test_written_notebooks_get_the_usual_file_mode(chapter):
    import os
    import stat

    sync_chapter(chapter)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(chapter.notebook.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("ui_state", [
    {"jupyter": {"outputs_hidden": True}},
    {"collapsed": True, "scrolled": True},
    {"jupyter": {"source_hidden": True}, "execution": {"iopub.execute_input": "2026-01-01"}},
])
def test_ui_state_is_not_a_hand_edit(chapter, ui_state):
    sync_chapter(chapter)
    fake_run(chapter)
    notebook = nbformat.read(chapter.notebook, as_version=4)
    notebook.cells[1].metadata.update(ui_state)  # what JupyterLab saves after a collapse
    nbformat.write(notebook, chapter.notebook)
    assert drift(chapter) is None
    assert execution_problem(chapter) is None
    result = sync_chapter(chapter)
    assert result.kept == 4
    assert all(key not in nbformat.read(chapter.notebook, as_version=4).cells[1].metadata
               for key in ui_state), "sync writes the notebook without the UI state"


def test_sync_writes_the_readme_chapter_table(chapter):
    from dlbook.engine.sync import README_END, README_START, readme_drift, sync_readme

    readme = chapter.root / "README.md"
    readme.write_text(f"# Book\n\n{README_START}\n| stale |\n{README_END}\n\nMore.\n")
    assert "out of date" in readme_drift(chapter.root)
    assert sync_readme(chapter.root) is True
    text = readme.read_text()
    assert "| 1 | A tiny chapter | [notebooks/01_tiny.ipynb](notebooks/01_tiny.ipynb) |" in text
    assert "colab.research.google.com/github/example/tinybook/blob/main/notebooks/01_tiny.ipynb" in text
    assert text.endswith("\n\nMore.\n") and readme_drift(chapter.root) is None
    assert sync_readme(chapter.root) is False


def test_the_code_fingerprint_ignores_the_generated_install_cell_only(chapter):
    sync_chapter(chapter)
    notebook = nbformat.read(chapter.notebook, as_version=4)
    with_install = code_fingerprint(notebook)
    install = [c for c in notebook.cells if "colab-install" in c.metadata.get("tags", [])]
    assert len(install) == 1
    install[0].source += "\n# another repository"
    assert code_fingerprint(notebook) == with_install
    notebook.cells.remove(install[0])
    assert code_fingerprint(notebook) == with_install
    lesson = next(c for c in notebook.cells if c.cell_type == "code")
    lesson.source += "\nx = 1"
    assert code_fingerprint(notebook) != with_install
