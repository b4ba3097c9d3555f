import pytest

from dlbook.report import HEADLINE_PREFIX, headline


def test_headline_is_printed_once_with_its_prefix(capsys):
    assert headline("  test accuracy 0.97 ") is None  # no second copy as the cell's value
    assert capsys.readouterr().out == HEADLINE_PREFIX + "test accuracy 0.97\n"


@pytest.mark.parametrize("text", ["", "  ", "two\nlines", 0.97])
def test_headline_must_be_one_line_of_text(text):
    with pytest.raises(ValueError, match="headline must be one non-empty line of text"):
        headline(text)
