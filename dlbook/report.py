"""What a chapter reports to the book's tools: its headline, and the numbers its prose quotes.

- :func:`headline` prints one line that ``dlbook run`` copies into the run report.
- :func:`measure` records a named number. When the chapter runs under ``dlbook sweep`` (or
  ``dlbook run``), the value is written to the file named by ``DLBOOK_MEASURES``, and the seed-sweep
  report lists it per seed, so a range quoted in the prose ("0.97–0.99 over seeds …") can be traced
  to a run anyone can repeat. Outside those tools it only returns the value.
"""

from __future__ import annotations

import json
import math
import os
import re

HEADLINE_PREFIX = "Headline: "
MEASURES_VARIABLE = "DLBOOK_MEASURES"
MEASURE_NAME = re.compile(r"^[a-z0-9][a-z0-9 _.,:()/%+-]*$")


def headline(text: str) -> None:
    """Print a chapter's headline result, e.g. ``headline("test recall 0.81 at precision 0.62")``.

    ``dlbook run`` finds the printed line in the executed notebook and puts it in the report, so
    the table printed after a build says what each chapter achieved, not only how long it took.
    """
    if not isinstance(text, str) or not text.strip() or "\n" in text:
        raise ValueError(f"headline must be one non-empty line of text, got {text!r}")
    print(HEADLINE_PREFIX + text.strip())


def measure(name: str, value):
    """Record the number ``value`` under ``name`` for the seed-sweep report; return ``value``.

    ``name`` is short, lower-case and stable (``"test accuracy"``, ``"lstm minus rnn accuracy"``):
    the report has one column per name. Prints nothing, so it never changes a stored output.
    Taught in chapter 1.
    """
    if not isinstance(name, str) or not MEASURE_NAME.match(name):
        raise ValueError("measure name must be lower-case words, digits and simple punctuation, "
                         f"got {name!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"measure {name!r}: value must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"measure {name!r}: value must be finite, got {number}")
    target = os.environ.get(MEASURES_VARIABLE)
    if target:
        with open(target, "a", encoding="utf-8") as stream:
            stream.write(json.dumps({"name": name, "value": number}) + "\n")
    return value


def read_measures(path) -> dict[str, float]:
    """The measures a run recorded, by name (a name recorded twice keeps its last value)."""
    measures: dict[str, float] = {}
    try:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                if line.strip():
                    entry = json.loads(line)
                    measures[entry["name"]] = entry["value"]
    except FileNotFoundError:
        pass
    return measures
