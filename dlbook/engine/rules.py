"""The rules every chapter follows, checked without executing anything.

``dlbook check`` and the test suite (``tests/test_book.py``) apply exactly these, and
CONTRIBUTING.md states each of them, so a chapter written by the documented steps passes CI.
Each rule takes a chapter (and the reports) and returns a list of problems, empty when it holds.
"""

from __future__ import annotations

import re

from dlbook.engine.chapters import SOLUTION_TAG, TESTS_TAG, Chapter, read_source
from dlbook.engine.reports import entry_status, over_budget, sweep_problems
from dlbook.engine.sync import drift, execution_problem
from dlbook.repro import DEFAULT_SEED

MIN_EXERCISES, MAX_EXERCISES = 2, 4
MIN_CHECKED_CLAIMS = 3
LEGACY_KERAS = ("tf.keras", "tf_keras", "tensorflow_hub", "ImageDataGenerator")
SETUP_CALL = re.compile(r"repro\.setup\((?:seed\s*=\s*)?(\d*)\s*\)")
FIXED_SEED_NOTE = "# fixed seed:"
HARD_CODED_SEED = re.compile(
    r"\b(?:random_state|seeds?)\s*=\s*[\[(]?\s*\d"
    r"|\b(?:default_rng|RandomState|set_random_seed|set_seed|SeedGenerator|PRNGKey|Generator)"
    r"\(\s*\d"
    r"|\b(?:np\.)?random\.seed\(\s*\d"
    r"|\bfor\s+\w*seed\w*\s+in\s+(?:range\(\s*\d|[\[(]\s*\d)"
)


def _code_cells(chapter: Chapter):
    return [c for c in read_source(chapter).cells if c.cell_type == "code"]


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def in_sync(chapter: Chapter) -> list[str]:
    """The notebook is what ``dlbook sync`` makes of the source."""
    problem = drift(chapter)
    return [problem] if problem else []


def executed(chapter: Chapter) -> list[str]:
    """Every code cell was executed, from the current code (``dlbook run``)."""
    problem = execution_problem(chapter) if not drift(chapter) else None
    return [problem] if problem else []


def in_run_report(chapter: Chapter, run_report: dict) -> list[str]:
    """Its last run passed, ran the current code, was within budget and reported a headline."""
    entry = run_report["chapters"].get(chapter.stem)
    status = entry_status(chapter, entry)
    if status == "missing":
        return [f"{chapter.stem}: not in reports/run_report.json (run `dlbook run {chapter.stem}`)"]
    problems = []
    if status == "FAILED":
        problems.append(f"{chapter.stem}: its last run failed: {entry.get('error')}")
    elif status == "stale":
        problems.append(f"{chapter.stem}: the run report is from older code "
                        f"(run `dlbook run {chapter.stem}`)")
    if over_budget(entry):
        problems.append(f"{chapter.stem}: over budget ({'; '.join(over_budget(entry))})")
    if not entry.get("headline"):
        problems.append(f"{chapter.stem}: reports no headline (call dlbook.report.headline)")
    return problems


def exercises(chapter: Chapter) -> list[str]:
    """2–4 exercises, each a cell tagged ``solution``, followed by at least one ``tests`` cell."""
    tags = [t for c in read_source(chapter).cells for t in _tags(c)]
    solutions, tests = tags.count(SOLUTION_TAG), tags.count(TESTS_TAG)
    problems = []
    if not MIN_EXERCISES <= solutions <= MAX_EXERCISES:
        problems.append(f"{chapter.stem}: {solutions} exercises (cells tagged {SOLUTION_TAG!r}); "
                        f"a chapter has {MIN_EXERCISES}–{MAX_EXERCISES}")
    if tests < solutions:
        problems.append(f"{chapter.stem}: {solutions} exercises but {tests} test cells; every "
                        "exercise has tests")
    return problems


def checked_claims(chapter: Chapter) -> list[str]:
    """At least 3 code cells outside the exercises assert something (the chapter's claims)."""
    asserting = [c for c in _code_cells(chapter)
                 if not {SOLUTION_TAG, TESTS_TAG} & set(_tags(c))
                 and re.search(r"^\s*assert\b", c.source, re.M)]
    if len(asserting) < MIN_CHECKED_CLAIMS:
        return [f"{chapter.stem}: {len(asserting)} code cells outside the exercises assert "
                f"something; at least {MIN_CHECKED_CLAIMS} must (its central claims)"]
    return []


def keras_3_idioms(chapter: Chapter) -> list[str]:
    """No legacy Keras: ``tf.keras``, ``tf_keras``, TF-Hub, ``ImageDataGenerator``."""
    text = chapter.source.read_text(encoding="utf-8")
    return [f"{chapter.stem}: uses {legacy}" for legacy in LEGACY_KERAS if legacy in text]


def book_seed(chapter: Chapter) -> int:
    """The seed the chapter passes to ``repro.setup`` (the book's default when it passes none)."""
    for cell in _code_cells(chapter):
        match = SETUP_CALL.search(cell.source)
        if match:
            return int(match.group(1)) if match.group(1) else DEFAULT_SEED
    return DEFAULT_SEED


def one_seed(chapter: Chapter) -> list[str]:
    """The first code cell calls ``repro.setup`` (once in the chapter); no other literal seed
    appears in its code unless the line says why with a ``# fixed seed: …`` comment."""
    cells = _code_cells(chapter)
    problems = []
    calls = sum(len(SETUP_CALL.findall(c.source)) for c in cells)
    if not cells or not SETUP_CALL.search(cells[0].source) or calls != 1:
        problems.append(f"{chapter.stem}: the first code cell must call repro.setup(seed=…), and "
                        f"no other cell may (found {calls} call(s))")
    for cell in cells:
        for line in cell.source.splitlines():
            code = line.split("#", 1)[0]
            if SETUP_CALL.search(code) or FIXED_SEED_NOTE in line:
                continue
            if HARD_CODED_SEED.search(code):
                problems.append(f"{chapter.stem}: hard-coded seed in {line.strip()!r}; derive it "
                                f"from SEED (e.g. SEED + 1), or add '{FIXED_SEED_NOTE} <why>'")
    return problems


def in_seed_sweep(chapter: Chapter, sweep_report: dict) -> list[str]:
    """The sweep ran the current code on at least 5 seeds, the book's included, and all passed."""
    return sweep_problems(chapter, sweep_report["chapters"].get(chapter.stem), book_seed(chapter))


SOURCE_RULES = (exercises, checked_claims, keras_3_idioms, one_seed)


def problems(chapter: Chapter, run_report: dict, sweep_report: dict) -> list[str]:
    """Every rule at once (``dlbook check``)."""
    found = in_sync(chapter) + executed(chapter)
    for rule in SOURCE_RULES:
        found += rule(chapter)
    return found + in_run_report(chapter, run_report) + in_seed_sweep(chapter, sweep_report)
