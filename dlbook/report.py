"""The headline a chapter reports: one line that ``dlbook run`` copies into the run report."""

HEADLINE_PREFIX = "Headline: "


def headline(text: str) -> None:
    """Print a chapter's headline result, e.g. ``headline("test recall 0.81 at precision 0.62")``.

    ``dlbook run`` finds the printed line in the executed notebook and puts it in the report, so
    the table printed after a build says what each chapter achieved, not only how long it took.
    """
    if not isinstance(text, str) or not text.strip() or "\n" in text:
        raise ValueError(f"headline must be one non-empty line of text, got {text!r}")
    print(HEADLINE_PREFIX + text.strip())
