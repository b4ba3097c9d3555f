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
    (root / "pyproject.toml").write_text("")
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
