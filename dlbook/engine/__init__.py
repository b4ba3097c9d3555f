"""The engine that builds the book — what a maintainer touches; no chapter imports it.

- :mod:`~dlbook.engine.chapters` — where chapters live; reading and validating their MyST sources.
- :mod:`~dlbook.engine.sync` — ``dlbook sync``: sources → notebooks, keeping unchanged outputs.
- :mod:`~dlbook.engine.runner` — ``dlbook run`` / ``dlbook sweep``: execute in fresh kernels, with
  time and memory limits, in parallel, interruptible.
- :mod:`~dlbook.engine.reports` — the run report and the seed-sweep report in ``reports/``.
- :mod:`~dlbook.engine.rules` — the chapter rules that ``dlbook check`` and the tests apply.
- :mod:`~dlbook.engine.cli` — the ``dlbook`` command.

The direction of imports is one way: the engine may import the library (``dlbook.report`` for the
headline format, ``dlbook.repro`` for the seed variable), never the reverse (a test checks it).
"""


def main(argv: list[str] | None = None) -> int:
    """The ``dlbook`` command; says what to install when the engine's tools are missing."""
    try:
        from dlbook.engine.cli import main as command
    except ImportError as error:  # dlbook installed for reading only: pip install dlbook
        import sys

        print(f"dlbook: error: the book's tools are not installed ({error.name} is missing): "
              "pip install 'dlbook[book]'", file=sys.stderr)
        return 2
    return command(argv)
