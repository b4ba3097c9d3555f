"""Helpers for tests that need a small book of their own in a temporary folder."""

from __future__ import annotations

from pathlib import Path

FRONT_MATTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def chapter_text(*cells: str, title: str = "# A tiny chapter") -> str:
    """A chapter source: front matter, a title, then the given cells (markdown or code)."""
    return FRONT_MATTER + "\n" + title + "\n\n" + "\n\n".join(cells) + "\n"


def code(source: str, tags: list[str] | None = None) -> str:
    options = f":tags: [{', '.join(tags)}]\n\n" if tags else ""
    return f"```{{code-cell}} ipython3\n{options}{source}\n```"


def make_book(root: Path, chapters: dict[str, str]) -> Path:
    (root / "chapters").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.dlbook]\nrepository = "https://github.com/example/tinybook"\nbranch = "main"\n')
    for stem, text in chapters.items():
        (root / "chapters" / f"{stem}.md").write_text(text)
    return root


TINY = chapter_text(
    "Some prose.",
    code("x = 21 * 2\nprint(x)"),
    code("def double(v):\n    ### BEGIN SOLUTION\n    return 2 * v\n    ### END SOLUTION",
         ["solution"]),
    code("assert double(2) == 4\nfrom dlbook.report import headline\nheadline(f'x is {x}')",
         ["tests"]),
)

# A chapter that follows every rule of CONTRIBUTING.md (dlbook check passes once it has run and
# been swept). Its setup cell imports TensorFlow, so it costs a few seconds a run: use it only
# where the rules themselves are tested.
COMPLIANT = chapter_text(
    "Some prose.",
    code("# NBVAL_IGNORE_OUTPUT\nfrom dlbook import repro\n\nsetup = repro.setup(seed=42)\n"
         "print(setup)\nSEED = setup.seed"),
    code("import numpy as np\n\nvalues = np.random.default_rng(SEED).normal(size=1000)\n"
         "assert abs(values.mean()) < 0.2"),
    code("x = 21 * 2\nassert x == 42"),
    code("assert values.std() > 0.8"),
    code("def double(v):\n    ### BEGIN SOLUTION\n    return 2 * v\n    ### END SOLUTION",
         ["solution"]),
    code("assert double(2) == 4", ["tests"]),
    code("def triple(v):\n    ### BEGIN SOLUTION\n    return 3 * v\n    ### END SOLUTION",
         ["solution"]),
    code("assert triple(2) == 6\nfrom dlbook.report import headline, measure\n"
         "measure('mean', values.mean())\nheadline(f'x is {x}')", ["tests"]),
)
