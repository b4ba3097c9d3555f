"""Text datasets: the vendored human-rated sentences, VADER's lexicon, the CMU dictionary."""

import gzip

import pytest

from dlbook import data
from dlbook.data import DatasetError, text
from dlbook.data.registry import vendored_file


@pytest.mark.parametrize(("domain", "everything", "kept", "positive"), [
    ("movie", 10605, 10072, 0.496),
    ("tweets", 4200, 3432, 0.683),
    ("nyt", 5190, 2970, 0.400),
    ("amazon", 3708, 2985, 0.586),
])
def test_sentiment_snippets_per_domain(domain, everything, kept, positive):
    assert len(data.load_sentiment_snippets(domain, min_abs_rating=0)) == everything
    frame = data.load_sentiment_snippets(domain)
    assert len(frame) == kept and frame.index.is_unique
    assert list(frame.columns) == ["text", "rating", "positive"]
    assert frame["positive"].mean() == pytest.approx(positive, abs=0.001)
    assert (frame["rating"].abs() >= 0.5).all() and frame["rating"].between(-4, 4).all()
    assert (frame["positive"] == (frame["rating"] > 0)).all()
    assert not frame["text"].str.contains("\r").any(), "CR line endings are removed"
    assert (frame["text"].str.len() > 0).all()


def test_sentiment_ratings_are_attached_to_the_right_sentences():
    frame = data.load_sentiment_snippets("movie", min_abs_rating=0)
    first = frame.iloc[0]
    assert first["text"].startswith("The Rock is destined to be the 21st Century's new")
    assert first["rating"] == pytest.approx(2.26666666667)
    assert frame.loc["3", "text"] == "Effective but too tepid biopic"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"domain": "imdb"}, "domain must be one of"),
    ({"min_abs_rating": -1}, r"min_abs_rating must be a number in \[0, 4\]"),
    ({"min_abs_rating": "0.5"}, "min_abs_rating must be a number"),
])
def test_sentiment_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load_sentiment_snippets(**kwargs)


def test_a_corrupted_vendored_file_is_refused(tmp_path, monkeypatch):
    original = vendored_file("tweets_GroundTruth.txt.gz")
    broken = tmp_path / "tweets_GroundTruth.txt.gz"
    broken.write_bytes(gzip.compress(gzip.decompress(original.read_bytes())[:-10]))
    monkeypatch.setattr(text, "vendored_file", lambda name: tmp_path / name)
    with pytest.raises(DatasetError, match="sha256 is"):
        data.load_sentiment_snippets("tweets")


def test_vader_lexicon_has_the_human_ratings():
    lexicon = data.load_vader_lexicon()
    assert len(lexicon) == 7506 and lexicon.index.is_unique
    assert lexicon.loc["lol", "mean"] == pytest.approx(1.8)  # the later of its two lines, as VADER
    assert lexicon.loc["good", "mean"] > 1.5 and lexicon.loc["horrible", "mean"] < -2
    assert all(len(r) == 10 for r in lexicon["ratings"])
    row = lexicon.loc["good"]
    assert sum(row["ratings"]) / 10 == pytest.approx(row["mean"], abs=0.01)


def test_cmudict_first_pronunciations_and_variants():
    words = data.load_cmudict()
    assert len(words) == 126052 and words["word"].is_unique
    lookup = dict(zip(words["word"], words["phonemes"], strict=True))
    assert lookup["cat"] == "K AE1 T"
    assert lookup["aalborg"] == "AO1 L B AO0 R G"  # the trailing comment is dropped
    everything = data.load_cmudict(alternatives=True)
    assert len(everything) == 135166
    assert set(everything.loc[everything["word"] == "read", "phonemes"]) == {"R EH1 D", "R IY1 D"}
