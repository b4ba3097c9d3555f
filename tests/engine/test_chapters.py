import pytest

from dlbook.engine.chapters import (
    DlbookError,
    SourceError,
    all_chapters,
    build_notebook,
    find_root,
    read_source,
    resolve,
)
from tests.engine.helpers import FRONT_MATTER, TINY, chapter_text, code, make_book


@pytest.fixture
def book(tmp_path):
    return make_book(tmp_path / "book", {"01_tiny": TINY, "02_second_one": TINY})


def test_chapters_are_found_in_book_order(book):
    assert [c.stem for c in all_chapters(book)] == ["01_tiny", "02_second_one"]


@pytest.mark.parametrize("name", ["02_second_one", "2", "02", "second_one",
                                  "chapters/02_second_one.md", "notebooks/02_second_one.ipynb"])
def test_a_chapter_can_be_named_several_ways(book, name):
    assert [c.stem for c in resolve(book, [name])] == ["02_second_one"]


def test_no_names_means_every_chapter(book):
    assert len(resolve(book, [])) == 2


def test_unknown_chapter_lists_the_known_ones(book):
    with pytest.raises(DlbookError, match="unknown chapter 'nope'; chapters are: 01_tiny, 02_"):
        resolve(book, ["nope"])


def test_badly_named_source_is_refused(book):
    (book / "chapters" / "intro.md").write_text(TINY)
    with pytest.raises(SourceError, match="intro.md: chapter files are named NN_slug.md"):
        all_chapters(book)


def test_duplicate_chapter_numbers_are_refused(book):
    (book / "chapters" / "01_other.md").write_text(TINY)
    with pytest.raises(SourceError, match=r"share the number\(s\) \[1\]"):
        all_chapters(book)


def test_root_is_found_from_a_subfolder(book):
    assert find_root(book / "chapters") == book.resolve()


def test_root_outside_a_book_is_an_error(tmp_path):
    with pytest.raises(DlbookError, match="no book found"):
        find_root(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# Title\n\n```{code-cell} ipython3\nx = 1\n```\n", "missing the MyST front matter"),
        (FRONT_MATTER + "\n# T\n\n```{code-cell} ipython3\nx = 1\n",
         r"01_tiny.md:\d+: code cell is never closed"),
        (FRONT_MATTER + "\n# T\n\n```{code-cell} ipython3\nx = 1\n\n```{code-cell} ipython3\ny = 2\n```\n",
         r"01_tiny.md:14: code cell is not closed with ``` before the next code cell starts at line 17"),
        (chapter_text(code("x = 1"), title="No title here"), "first cell must be markdown"),
        (chapter_text(code("x = 1", ["solution"])), "needs ### BEGIN SOLUTION"),
        (chapter_text(code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")), "not tagged 'solution'"),
        (chapter_text(code("### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS")),
         "hidden-test markers in a cell not tagged 'tests'"),
        (chapter_text(code("### BEGIN HIDDEN TESTS\nassert 1", ["tests"])), "come in pairs"),
        (chapter_text(code("x = 1", ["solution", "tests"])), "either a solution or tests"),
    ],
)
def test_malformed_sources_are_refused_with_the_reason(book, text, message):
    (book / "chapters" / "01_tiny.md").write_text(text)
    with pytest.raises(SourceError, match=message):
        build_notebook(resolve(book, ["1"])[0])


def test_tests_before_any_solution_are_refused(book):
    (book / "chapters" / "01_tiny.md").write_text(chapter_text(code("assert True", ["tests"])))
    with pytest.raises(SourceError, match="comes before any 'solution' cell"):
        build_notebook(resolve(book, ["1"])[0])


def test_non_utf8_source_is_refused(book):
    (book / "chapters" / "01_tiny.md").write_bytes(b"\xff\xfe not text")
    with pytest.raises(SourceError, match="not UTF-8"):
        read_source(resolve(book, ["1"])[0])


def test_notebook_gets_stable_ids_and_nbgrader_metadata(book):
    chapter = resolve(book, ["1"])[0]
    first, second = build_notebook(chapter), build_notebook(chapter)
    assert [c.id for c in first.cells] == [c.id for c in second.cells]
    install, solution, tests = first.cells[1], first.cells[3], first.cells[4]
    assert install.metadata.tags == ["colab-install"] and "google.colab" in install.source
    assert solution.metadata.nbgrader == {
        "grade": False, "grade_id": "01_tiny-ex1-solution", "locked": False,
        "schema_version": 3, "solution": True, "task": False,
    }
    assert tests.metadata.nbgrader["grade"] is True
    assert tests.metadata.nbgrader["points"] == 1
    assert tests.metadata.nbgrader["grade_id"].startswith("01_tiny-ex1-tests")
    assert all(c.outputs == [] and c.execution_count is None
               for c in first.cells if c.cell_type == "code")
    assert first.metadata.kernelspec.name == "python3"


def test_identical_cells_get_distinct_ids(book):
    (book / "chapters" / "01_tiny.md").write_text(chapter_text(code("x = 1"), code("x = 1")))
    ids = [c.id for c in build_notebook(resolve(book, ["1"])[0]).cells]
    assert len(set(ids)) == len(ids)


def test_code_cells_are_located_in_their_source(book):
    from dlbook.engine.chapters import source_location

    (book / "chapters" / "01_tiny.md").write_text(chapter_text("Prose.", code("x = 1"), code("y = 2")))
    chapter = resolve(book, ["1"])[0]
    notebook = build_notebook(chapter)
    lines = chapter.source.read_text().splitlines()
    assert source_location(chapter, notebook, 3) == f"chapters/01_tiny.md:{lines.index('y = 2')}"
    assert source_location(chapter, notebook, 1) is None  # the generated install cell
    assert source_location(chapter, notebook, 0) is None  # a markdown cell
    assert source_location(chapter, notebook, 99) is None


def test_the_repository_setting_is_checked(book):
    from dlbook.engine.chapters import settings

    assert settings(book) == {"repository": "https://github.com/example/tinybook", "branch": "main"}
    (book / "pyproject.toml").write_text('[tool.dlbook]\nrepository = "github.com/x"\n')
    with pytest.raises(DlbookError, match=r"needs \[tool.dlbook\] repository"):
        settings(book)
