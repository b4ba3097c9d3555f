"""Invariants of the committed book: every chapter synced, executed from its current code,
within budget, with exercises and checked claims. (The notebooks' outputs themselves are compared
by nbval, in the same pytest run.)"""

import json
import re
from pathlib import Path

import pytest

from dlbook.engine.chapters import SOLUTION_TAG, TESTS_TAG, all_chapters, read_source
from dlbook.engine.runner import REPORT_JSON, over_budget
from dlbook.engine.sync import drift, execution_problem

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = all_chapters(ROOT)


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found"


def test_sources_are_markdown_only():
    assert sorted(p.suffix for p in (ROOT / "chapters").iterdir()) == [".md"] * len(CHAPTERS)
    assert {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} == {c.stem for c in CHAPTERS}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_notebook_is_in_sync_with_its_source(chapter):
    assert drift(chapter) is None


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_every_code_cell_was_executed_from_the_current_code(chapter):
    assert execution_problem(chapter) is None


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_is_within_budget_in_the_run_report(chapter):
    report = json.loads((ROOT / REPORT_JSON).read_text())
    entry = report["chapters"].get(chapter.stem)
    assert entry is not None, f"{chapter.stem} missing from {REPORT_JSON}: run `dlbook run`"
    assert over_budget(entry) == []
    assert entry["headline"], "the chapter reports no headline result"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_has_exercises_and_checked_claims(chapter):
    notebook = read_source(chapter)
    tags = [t for c in notebook.cells for t in c.metadata.get("tags", [])]
    assert 2 <= tags.count(SOLUTION_TAG) <= 4, "2–4 exercises, each with a solution cell"
    assert tags.count(TESTS_TAG) >= tags.count(SOLUTION_TAG), "every exercise has tests"
    untested = [c for c in notebook.cells if c.cell_type == "code"
                and SOLUTION_TAG not in c.metadata.get("tags", [])
                and TESTS_TAG not in c.metadata.get("tags", [])
                and re.search(r"^\s*assert\b", c.source, re.M)]
    assert len(untested) >= 3, "central claims are checked by assertions outside the exercises"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_uses_keras_3_idioms(chapter):
    text = chapter.source.read_text()
    for legacy in ("tf.keras", "tf_keras", "tensorflow_hub", "ImageDataGenerator"):
        assert legacy not in text, f"{chapter.stem} uses {legacy}"
