"""The committed book follows every rule of CONTRIBUTING.md — the same rules ``dlbook check``
applies (``dlbook.engine.rules``). The notebooks' outputs themselves are compared by nbval, in the
same pytest run."""

from pathlib import Path

import pytest

from dlbook.engine import reports, rules
from dlbook.engine.chapters import all_chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = all_chapters(ROOT)
RUN_REPORT = reports.load(ROOT, reports.REPORT_JSON)
SWEEP_REPORT = reports.load(ROOT, reports.SWEEP_JSON)


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found"


def test_sources_are_markdown_only():
    assert sorted(p.suffix for p in (ROOT / "chapters").iterdir()) == [".md"] * len(CHAPTERS)
    assert {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} == {c.stem for c in CHAPTERS}


@pytest.mark.parametrize("rule", [rules.in_sync, rules.executed, *rules.SOURCE_RULES],
                         ids=lambda r: r.__name__)
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_rule(chapter, rule):
    assert rule(chapter) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_is_current_and_within_budget_in_the_run_report(chapter):
    assert rules.in_run_report(chapter, RUN_REPORT) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_passes_the_seed_sweep(chapter):
    assert rules.in_seed_sweep(chapter, SWEEP_REPORT) == []


def test_readme_lists_every_chapter():
    from dlbook.engine.sync import readme_drift

    assert readme_drift(ROOT) is None
    readme = (ROOT / "README.md").read_text()
    for chapter in CHAPTERS:
        assert f"notebooks/{chapter.stem}.ipynb" in readme, f"README's table misses {chapter.stem}"
