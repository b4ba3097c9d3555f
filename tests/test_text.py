"""Tests of dlbook.text (chapter 11): BPE against a from-scratch reference, Keras's vocabulary
against the plain-Python count, the vocabulary fingerprint, the n-gram models against dictionary
references and normalisation, the classifiers' parameter counts, masks and word scores, and the
character language model's sampler and scorer against direct calls of the model."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gc  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlbook import text  # noqa: E402

CORPUS = [
    "The film is good, and the cast is good too.",
    "It isn't good: it's bad — très mauvais!",
    "A good, GOOD film.   Tabs\there, and a newline\nthere.",
    "the the the aaaa abab",
]


# --- pretokenise and BPE ---------------------------------------------------------------------

@pytest.mark.parametrize("sentence", CORPUS + ["", "  ", "naïve café 🎬!!", "x\r\n y\t\tz"])
def test_pretokenise_covers_the_text(sentence):
    chunks = text.pretokenise(sentence)
    assert "".join(chunks) == sentence
    assert all(chunks)


def test_pretokenise_keeps_the_space_with_the_word():
    assert text.pretokenise("It's good.") == ["It", "'", "s", " good", "."]


def reference_bpe(texts, num_merges):
    """BPE the slow, obvious way: recount every pair after every merge."""
    words = Counter(chunk for t in texts for chunk in text.pretokenise(t))
    symbols = {chunk: list(chunk.encode()) for chunk in words}
    merges = []
    for new in range(256, 256 + num_merges):
        pairs = Counter()
        for chunk, count in words.items():
            for pair in zip(symbols[chunk], symbols[chunk][1:], strict=False):
                pairs[pair] += count
        if not pairs or max(pairs.values()) < 2:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        symbols = {chunk: text._merge(s, best, new) for chunk, s in symbols.items()}
    return merges


def test_learn_bpe_equals_the_reference_on_real_sentences():
    from dlbook.data import load_sentiment_snippets

    sentences = list(load_sentiment_snippets("movie")["text"][:300]) + CORPUS
    assert list(text.learn_bpe(sentences, 150).merges) == reference_bpe(sentences, 150)


def test_learn_bpe_overlapping_pairs_and_early_stop():
    merges = text.learn_bpe(["aaaa aaaa"], 10).merges
    assert merges == tuple(reference_bpe(["aaaa aaaa"], 10))
    assert merges[0] == (ord("a"), ord("a"))
    # "aaaa" -> (aa)(aa) -> (aaaa); " aaaa" likewise; then no pair occurs twice
    assert len(text.learn_bpe(["ab"], 5).merges) == 0


def test_bpe_tokens_vocabulary_and_round_trip():
    bpe = text.learn_bpe(CORPUS * 3, 40)
    assert len(bpe) == 256 + len(bpe.merges) == len(bpe.tokens)
    for i, (a, b) in enumerate(bpe.merges):
        assert bpe.tokens[256 + i] == bpe.tokens[a] + bpe.tokens[b]
    for sentence in CORPUS + ["never seen: 🎬 ÆØÅ ½"]:
        ids = bpe.encode(sentence)
        assert all(0 <= t < len(bpe) for t in ids)
        assert bpe.decode(ids) == sentence
    assert len(bpe.encode("the film is good")) < len(b"the film is good")
    assert bpe.truncated(0).encode("good") == list(b"good")
    assert bpe.truncated(5).merges == bpe.merges[:5]


def test_bpe_applies_merges_in_learned_order_not_left_to_right():
    a, b, c = ord("a"), ord("b"), ord("c")
    bpe = text.BytePairEncoding([(b, c), (a, b)])
    # Merge 0 (b, c) comes first: "abc" -> a|bc; left to right would wrongly give ab|c.
    assert bpe.encode("abc") == [a, 256]
    assert bpe.encode("abd") == [257, ord("d")]


def test_bpe_argument_errors():
    with pytest.raises(ValueError, match="list of strings"):
        text.learn_bpe("just one string", 3)
    with pytest.raises(ValueError, match="all be strings"):
        text.learn_bpe(["ok", 3], 3)
    with pytest.raises(ValueError, match="num_merges"):
        text.learn_bpe(CORPUS, -1)
    with pytest.raises(ValueError, match="merge 0"):
        text.BytePairEncoding([(1, 300)])
    with pytest.raises(ValueError, match="at most"):
        text.BytePairEncoding([(97, 98)]).truncated(2)
    with pytest.raises(ValueError, match="string"):
        text.pretokenise(b"bytes")


# --- words, vocabularies and fingerprints ------------------------------------------------------

def test_frequency_vocabulary_equals_textvectorization():
    sentences = CORPUS + ["ÉCOLE école Ecole", "b a c b a c z y x", "It's, it’s — its"]
    layer = keras.layers.TextVectorization()
    layer.adapt(np.array(sentences))
    ours = text.frequency_vocabulary(text.standardise(s) for s in sentences)
    assert ours == [str(t) for t in layer.get_vocabulary()]
    layer = keras.layers.TextVectorization(max_tokens=7)
    layer.adapt(np.array(sentences))
    assert text.frequency_vocabulary((text.standardise(s) for s in sentences), 7) == \
        [str(t) for t in layer.get_vocabulary()]


def test_standardise_is_ascii_lowercase_and_strips_punctuation():
    assert text.standardise("Doesn't ÉCOLE, Fine!") == ["doesnt", "École", "fine"]


def test_frequency_vocabulary_ties_by_decreasing_token():
    assert text.frequency_vocabulary([["b", "a", "c", "a"]]) == ["", "[UNK]", "a", "c", "b"]
    with pytest.raises(ValueError, match="max_tokens"):
        text.frequency_vocabulary([["a"]], 2)


def test_vocabulary_hash_is_sensitive_to_every_change():
    base = text.vocabulary_hash(["", "[UNK]", "good", "bad"])
    assert len(base) == 16 and int(base, 16) >= 0
    assert base == text.vocabulary_hash(["", "[UNK]", "good", "bad"])
    assert base == text.vocabulary_hash([b"", b"[UNK]", b"good", b"bad"])
    assert base != text.vocabulary_hash(["", "[UNK]", "bad", "good"])
    assert base != text.vocabulary_hash(["", "[UNK]", "good", "bad", "ugly"])
    assert text.vocabulary_hash(["ab", "c"]) != text.vocabulary_hash(["a", "bc"])
    with pytest.raises(ValueError, match="str or bytes"):
        text.vocabulary_hash(["a", 3])


# --- n-gram models -------------------------------------------------------------------------------

def reference_bits(train, evaluate, order, vocab, smoothing, k=0.1, boundary=0):
    train = [boundary] * (order - 1) + list(train)
    evaluate = [boundary] * (order - 1) + list(evaluate)
    counts = [defaultdict(Counter) for _ in range(order + 1)]
    for n in range(1, order + 1):
        for i in range(order - 1, len(train)):  # every order counts the n-grams ending at each
            # real (not padding) symbol
            counts[n][tuple(train[i - n + 1:i])][train[i]] += 1

    def probability(history, c, n):
        if n == 0:
            return 1.0 / vocab
        followers = counts[n].get(tuple(history[len(history) - n + 1:]) if n > 1 else ())
        if smoothing == "add-k":
            seen = followers[c] if followers else 0
            total = sum(followers.values()) if followers else 0
            return (seen + k) / (total + k * vocab)
        lower = probability(history, c, n - 1)
        if not followers:
            return lower
        total, types = sum(followers.values()), len(followers)
        return (followers[c] + types * lower) / (total + types)

    return np.array([-np.log2(probability(evaluate[i - order + 1:i], evaluate[i], order))
                     for i in range(order - 1, len(evaluate))])


@pytest.mark.parametrize("smoothing", ["add-k", "witten-bell"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_ngram_bits_equal_a_dictionary_reference(smoothing, order):
    rng = np.random.default_rng(order)
    vocab = 5
    train = rng.choice(vocab, 400, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    evaluate = rng.choice(vocab, 120)
    ours = text.ngram_bits(train, evaluate, order, vocab, smoothing, k=0.3)
    reference = reference_bits(train, evaluate, order, vocab, smoothing, k=0.3)
    assert ours.shape == (len(evaluate),)
    np.testing.assert_allclose(ours, reference, rtol=1e-12)


@pytest.mark.parametrize("smoothing", ["add-k", "witten-bell"])
def test_ngram_probabilities_sum_to_one_in_every_context(smoothing):
    rng = np.random.default_rng(0)
    vocab, order = 6, 3
    train = rng.choice(vocab, 300)
    for history in ([1, 2], [5, 5], [0, 3]):
        total = sum(2.0 ** -text.ngram_bits(train, history + [c], order, vocab, smoothing)[-1]
                    for c in range(vocab))
        assert total == pytest.approx(1.0, abs=1e-12)


def test_ngram_counting_learns_a_deterministic_pattern():
    pattern = np.tile([1, 2, 3, 4], 200)
    bits = text.ngram_bits(pattern, pattern[:40], 2, 5)
    assert bits[1:].mean() < 0.05  # after a 1, a 2 always follows
    assert text.ngram_bits(pattern, pattern[:40], 1, 5).mean() == pytest.approx(2.0, abs=0.01)


def test_context_counts_equal_a_direct_count():
    rng = np.random.default_rng(1)
    train, evaluate = rng.choice(4, 200), rng.choice(4, 50)
    padded_train, padded_eval = [0, 0] + list(train), [0, 0] + list(evaluate)
    contexts = Counter(tuple(padded_train[i:i + 2]) for i in range(len(padded_train) - 2))
    expected = [contexts[tuple(padded_eval[i:i + 2])] for i in range(len(evaluate))]
    assert text.context_counts(train, evaluate, 2, 4).tolist() == expected
    assert (text.context_counts(train, evaluate, 0, 4) == len(train)).all()


def test_ngram_table_size_counts_distinct_ngrams():
    ids = np.array([1, 2, 1, 2, 3])
    # padded with one 0: unigrams {1, 2, 3}; bigrams {01, 12, 21, 23}
    assert text.ngram_table_size(ids, 1, 4) == 3
    assert text.ngram_table_size(ids, 2, 4) == 3 + 4


def test_ngram_argument_errors():
    ids = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="outside"):
        text.ngram_bits(ids, np.array([0, 5]), 2, 3)
    with pytest.raises(ValueError, match="integer ids"):
        text.ngram_bits(ids.astype(float), ids, 2, 3)
    with pytest.raises(ValueError, match="overflows"):
        text.ngram_bits(ids, ids, 20, 100)
    with pytest.raises(ValueError, match="smoothing"):
        text.ngram_bits(ids, ids, 2, 3, "kneser-ney")
    with pytest.raises(ValueError, match="k must"):
        text.ngram_bits(ids, ids, 2, 3, "add-k", k=0)
    with pytest.raises(ValueError, match="empty"):
        text.ngram_bits(ids, ids[:0], 2, 3)
    with pytest.raises(ValueError, match="boundary"):
        text.ngram_bits(ids, ids, 2, 3, boundary=3)


# --- sentiment classifiers ----------------------------------------------------------------------

def test_bag_of_embeddings_parameters_mask_and_word_scores():
    model = text.build_bag_of_embeddings(50, 8, 4, seed=3)
    assert model.count_params() == 50 * 4 + 4 + 1
    ids = np.array([[5, 7, 9, 0, 0, 0, 0, 0], [5, 7, 9, 11, 13, 17, 19, 23]], dtype="int32")
    table = np.asarray(model.get_layer("embedding").embeddings)
    kernel, bias = (np.asarray(w) for w in model.get_layer("positive").weights)
    for row, probability in zip(ids, np.asarray(model(ids))[:, 0], strict=True):
        real = row[row > 0]
        logit = table[real].mean(axis=0) @ kernel[:, 0] + bias[0]
        assert probability == pytest.approx(1 / (1 + np.exp(-logit)), rel=1e-5)
        # the word scores add up to the same logit
        assert logit == pytest.approx(text.word_scores(model)[real].mean() + bias[0], rel=1e-5)


def test_bag_of_embeddings_is_seeded():
    first = text.build_bag_of_embeddings(30, 5, 4, seed=1).get_weights()
    again = text.build_bag_of_embeddings(30, 5, 4, seed=1).get_weights()
    other = text.build_bag_of_embeddings(30, 5, 4, seed=2).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_recurrent_classifier_parameters_and_mask():
    vocab, dim, units = 40, 6, 5
    model = text.build_recurrent_classifier(vocab, 10, dim, units, seed=0)
    lstm = 4 * (units * (dim + units) + units)
    assert model.count_params() == vocab * dim + 2 * lstm + 2 * units + 1
    forward, backward = model.get_layer("lstm").forward_layer, model.get_layer("lstm").backward_layer
    assert not np.array_equal(np.asarray(forward.cell.kernel), np.asarray(backward.cell.kernel))
    short = text.build_recurrent_classifier(vocab, 4, dim, units, seed=9)
    short.set_weights(model.get_weights())
    sentence = np.array([[3, 8, 1, 7]], dtype="int32")
    padded = np.concatenate([sentence, np.zeros((1, 6), "int32")], axis=1)
    np.testing.assert_allclose(np.asarray(model(padded)), np.asarray(short(sentence)), atol=1e-6)


def test_classifier_argument_errors():
    with pytest.raises(ValueError, match="vocab_size"):
        text.build_bag_of_embeddings(1, 5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        text.build_recurrent_classifier(10, 5, seed=-1)
    with pytest.raises(TypeError):
        text.build_bag_of_embeddings(10, 5)  # the seed must be given
    with pytest.raises(ValueError, match="build_bag_of_embeddings"):
        text.word_scores(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]))


def test_step_timer_times_every_step():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    timer = text.StepTimer()
    model.fit(np.zeros((40, 3)), np.zeros(40), batch_size=10, epochs=2, verbose=0,
              callbacks=[timer])
    assert len(timer.seconds) == 8 and timer.median_ms > 0
    with pytest.raises(ValueError, match="two timed steps"):
        text.StepTimer().median_ms  # noqa: B018


# --- the character language model ---------------------------------------------------------------

@pytest.fixture(scope="module")
def language_model():
    model = text.CharLanguageModel(7, embedding_dim=4, units=6, seed=5)
    model(np.zeros((1, 3), dtype="int32"))
    rng = np.random.default_rng(0)  # larger weights than at initialisation: sharper predictions
    model.set_weights([rng.normal(0, 1.0, w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_language_model_shapes_and_parameters(language_model):
    assert language_model(np.zeros((2, 9), dtype="int32")).shape == (2, 9, 7)
    gru = 3 * (6 * (4 + 6) + 2 * 6)  # Keras GRU with reset_after: two bias vectors
    assert language_model.count_params() == 7 * 4 + gru + 6 * 7 + 7


def test_cold_sampling_is_greedy_decoding(language_model):
    prompt = np.array([[1, 2, 3], [4, 0, 6]], dtype="int32")
    drawn = language_model.sample(prompt, 12, 1e-4)
    sequence = prompt.copy()
    for _ in range(12):  # greedy decoding with the whole-sequence model, one call per symbol
        logits = np.asarray(language_model(sequence))[:, -1]
        sequence = np.concatenate([sequence, logits.argmax(axis=1)[:, None]], axis=1)
    np.testing.assert_array_equal(drawn, sequence[:, 3:])


def test_sampling_draws_from_the_tempered_distribution(language_model):
    prompt = np.full((4000, 2), 3, dtype="int32")
    logits = np.asarray(language_model(prompt[:1]))[0, -1]
    for temperature in (0.7, 1.0, 2.0):
        first = language_model.sample(prompt, 1, temperature)[:, 0]
        expected = np.exp(logits / temperature - (logits / temperature).max())
        expected /= expected.sum()
        observed = np.bincount(first, minlength=7) / len(first)
        assert np.abs(observed - expected).max() < 0.03  # ~4 standard errors at n = 4000


def test_sampling_is_reproducible_from_the_seed(language_model):
    twin = text.CharLanguageModel(7, embedding_dim=4, units=6, seed=5)
    twin(np.zeros((1, 3), dtype="int32"))
    twin.set_weights(language_model.get_weights())
    fresh = text.CharLanguageModel(7, embedding_dim=4, units=6, seed=5)
    fresh(np.zeros((1, 3), dtype="int32"))
    fresh.set_weights(language_model.get_weights())
    prompt = np.ones((3, 2), dtype="int32")
    first = twin.sample(prompt, 20, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(first, fresh.sample(prompt, 20, [0.5, 1.0, 1.5]))
    assert not np.array_equal(first, twin.sample(prompt, 20, [0.5, 1.0, 1.5]))  # the stream moved


def test_sample_argument_errors(language_model):
    with pytest.raises(ValueError, match="prompts"):
        language_model.sample(np.ones(3, dtype="int32"), 5, 1.0)
    with pytest.raises(ValueError, match="outside"):
        language_model.sample(np.full((1, 2), 7), 5, 1.0)
    with pytest.raises(ValueError, match="temperatures"):
        language_model.sample(np.ones((2, 2), dtype="int32"), 5, [1.0, 0.0])
    with pytest.raises(ValueError, match="steps"):
        language_model.sample(np.ones((2, 2), dtype="int32"), 0, 1.0)


def test_stream_bits_equal_the_model_on_each_piece(language_model):
    ids = np.random.default_rng(2).integers(0, 7, 103)
    whole = text.stream_bits(language_model, ids, segments=1, boundary=0)
    inputs = np.concatenate([[0], ids[:-1]])[None].astype("int32")
    log_p = np.asarray(keras.ops.log_softmax(language_model(inputs), axis=-1))[0]
    np.testing.assert_allclose(whole, -log_p[np.arange(103), ids] / np.log(2), rtol=1e-5)
    pieces = text.stream_bits(language_model, ids, segments=4, boundary=0)
    assert pieces.shape == (103,)
    # the first piece starts like the whole stream, from the boundary
    np.testing.assert_allclose(pieces[:25], whole[:25], rtol=1e-5)

    def fresh_bits(inputs, targets):
        log_q = np.asarray(keras.ops.log_softmax(
            language_model(inputs[None].astype("int32")), axis=-1))[0]
        return -log_q[np.arange(len(targets)), targets] / np.log(2)

    # the second of 4 pieces of 25 reads ids 24 … 48 from a fresh state; 3 ids are left over
    np.testing.assert_allclose(pieces[25:50], fresh_bits(ids[24:49], ids[25:50]), rtol=1e-5)
    np.testing.assert_allclose(pieces[100:], fresh_bits(ids[99:102], ids[100:]), rtol=1e-5)
    with pytest.raises(ValueError, match="at least"):
        text.stream_bits(language_model, ids[:3], segments=4)


def test_stream_bits_compiles_once_per_model(language_model):
    ids = np.random.default_rng(3).integers(0, 7, 60)
    other = text.CharLanguageModel(7, embedding_dim=4, units=6, seed=6)
    first = text.stream_bits(language_model, ids, segments=3)
    np.testing.assert_array_equal(text.stream_bits(language_model, ids, segments=3), first)
    assert not np.allclose(text.stream_bits(other, ids, segments=3), first)
    assert language_model in text._COMPILED_SCORERS and other in text._COMPILED_SCORERS
    cached = len(text._COMPILED_SCORERS)
    del other
    gc.collect()
    assert len(text._COMPILED_SCORERS) == cached - 1, "the cache must not keep a model alive"


def test_language_model_saves_and_loads(language_model, tmp_path):
    path = tmp_path / "char_lm.keras"
    language_model.save(path)
    loaded = keras.models.load_model(path)
    ids = np.array([[1, 2, 3, 4]], dtype="int32")
    np.testing.assert_allclose(np.asarray(loaded(ids)), np.asarray(language_model(ids)), atol=1e-6)
    assert (loaded.vocab_size, loaded.units, loaded.seed) == (7, 6, 5)
