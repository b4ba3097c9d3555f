"""Text: tokenisers, vocabulary fingerprints, n-gram counting models, a character language model.

- Tokenisation. :func:`pretokenise` cuts text into word and punctuation chunks (each with its
  leading space), :func:`learn_bpe` learns a byte-level byte-pair encoding from them and returns
  a :class:`BytePairEncoding` that encodes any text losslessly; :func:`standardise` and
  :func:`frequency_vocabulary` redo, in plain Python, what ``keras.layers.TextVectorization``
  does by default, so a chapter can check Keras's vocabulary against an independent count;
  :func:`vocabulary_hash` fingerprints a vocabulary so that a change in it cannot go unnoticed.
- Sentiment classifiers on token ids: :func:`build_bag_of_embeddings` (order-blind) and
  :func:`build_recurrent_classifier` (a bidirectional LSTM, which reads the order), and
  :func:`word_scores`, what the bag of embeddings learned about each word; :class:`StepTimer`
  times the training steps of ``fit``.
- Character language models. :func:`ngram_bits` scores text under a smoothed n-gram count model
  (add-k or Witten–Bell interpolation), vectorised with NumPy; :func:`ngram_table_size` counts
  what such a model stores; :func:`context_counts` says how often each context was seen in
  training; :class:`CharLanguageModel` is a GRU language model
  whose :meth:`~CharLanguageModel.sample` draws text at a chosen temperature in one compiled
  call, and :func:`stream_bits` scores a long text with it.

Taught in chapter 11.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from numbers import Integral, Real

import keras
import numpy as np
import tensorflow as tf

from dlbook.checks import check_int as _check_int

# A chunk is a run of word characters or a run of other non-space characters, each with the one
# space before it, or a run of whitespace. Every character falls in exactly one chunk, so
# joining the chunks gives the text back.
CHUNK = re.compile(r"\s?\w+|\s?[^\w\s]+|\s+")
# What TextVectorization's default "lower_and_strip_punctuation" removes (keras/src/layers/
# preprocessing/text_vectorization.py), after lower-casing ASCII letters only (tf.strings.lower).
KERAS_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']')
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
SMOOTHINGS = ("witten-bell", "add-k")


def _check_texts(texts) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise ValueError(f"texts must be a list of strings, not {type(texts).__name__}")
    texts = list(texts)
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts must all be strings; found {type(bad[0]).__name__} {bad[0]!r}")
    return texts


def _check_ids(argument: str, ids, vocab_size: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{argument} must be a 1-D array of integer ids, got shape {ids.shape} "
                         f"and dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{argument} holds ids outside 0 … {vocab_size - 1} (vocab_size="
                         f"{vocab_size}): found {ids.min()} … {ids.max()}")
    return ids.astype(np.int64)


# --- tokenisation ------------------------------------------------------------------------------

def pretokenise(text: str) -> list[str]:
    """Cut ``text`` into chunks that BPE merges never cross: ``"It's good."`` gives
    ``["It", "'", "s", " good", "."]``. ``"".join(pretokenise(text)) == text``. Taught in chapter 11.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    return CHUNK.findall(text)


def _merge(symbols: list[int], pair: tuple[int, int], new: int) -> list[int]:
    """``symbols`` with every non-overlapping occurrence of ``pair`` (left to right) replaced."""
    merged, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            merged.append(new)
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


class BytePairEncoding:
    """A byte-level BPE tokeniser: 256 byte tokens, then one new token per learned merge.

    Token ``256 + i`` stands for merge ``i``, the concatenation of the bytes of its two parts.
    Any text encodes (every byte is a token, so nothing is out of vocabulary) and decodes back
    exactly. Learn one with :func:`learn_bpe`. Taught in chapter 11.
    """

    def __init__(self, merges: Sequence[tuple[int, int]]):
        tokens = [bytes([b]) for b in range(256)]
        for i, pair in enumerate(merges):
            if (len(pair) != 2 or not all(isinstance(t, Integral) and 0 <= t < 256 + i
                                          for t in pair)):
                raise ValueError(f"merge {i} must be a pair of token ids below {256 + i}, "
                                 f"got {pair!r}")
            tokens.append(tokens[pair[0]] + tokens[pair[1]])
        self.merges = tuple((int(a), int(b)) for a, b in merges)
        self.tokens = tuple(tokens)
        self._rank = {pair: i for i, pair in enumerate(self.merges)}
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"BytePairEncoding({len(self.merges)} merges, {len(self)} tokens)"

    def truncated(self, num_merges: int) -> BytePairEncoding:
        """The tokeniser made of the first ``num_merges`` merges only (0: bytes)."""
        num_merges = _check_int("num_merges", num_merges, 0)
        if num_merges > len(self.merges):
            raise ValueError(f"num_merges must be at most {len(self.merges)}, got {num_merges}")
        return BytePairEncoding(self.merges[:num_merges])

    def _encode_chunk(self, chunk: str) -> list[int]:
        if chunk not in self._cache:
            symbols = list(chunk.encode("utf-8"))
            # Apply the learned merges in the order they were learned: always the earliest one
            # that occurs in the chunk, as learn_bpe did on the training text.
            while len(symbols) > 1:
                pairs = set(pairwise(symbols))
                first = min(pairs, key=lambda p: self._rank.get(p, len(self._rank)))
                if first not in self._rank:
                    break
                symbols = _merge(symbols, first, 256 + self._rank[first])
            self._cache[chunk] = symbols
        return self._cache[chunk]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return [t for chunk in pretokenise(text) for t in self._encode_chunk(chunk)]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids (bytes that are not valid UTF-8 become U+FFFD)."""
        return b"".join(self.tokens[i] for i in ids).decode("utf-8", errors="replace")


def learn_bpe(texts: Iterable[str], num_merges: int) -> BytePairEncoding:
    """Learn ``num_merges`` byte-pair merges from ``texts`` (Sennrich et al., 2016, on bytes).

    Each text is cut into chunks (:func:`pretokenise`) and each chunk into its UTF-8 bytes. Then,
    ``num_merges`` times: count every adjacent pair of tokens over all chunks, weighted by how
    often the chunk occurs; make the most frequent pair a new token (ties: the smallest pair of
    ids); replace it everywhere. The pair counts are updated only for the chunks that change, and
    a heap finds the most frequent pair, so 1,000 merges over a million characters take under a
    second. Stops early if no pair occurs twice. Taught in chapter 11.
    """
    texts = _check_texts(texts)
    num_merges = _check_int("num_merges", num_merges, 0)
    chunk_counts = Counter(chunk for text in texts for chunk in pretokenise(text))
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    counts = list(chunk_counts.values())
    pair_counts: Counter = Counter()
    words_with: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
    for w, (symbols, count) in enumerate(zip(words, counts, strict=True)):
        for pair in pairwise(symbols):
            pair_counts[pair] += count
            words_with[pair].add(w)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    touched: set[tuple[int, int]] = set()  # the pairs whose counts the current merge changed

    def move(old, fresh, count, w):
        """One occurrence of the pair ``old`` becomes ``fresh`` in word ``w``."""
        pair_counts[old] -= count
        pair_counts[fresh] += count
        words_with[fresh].add(w)
        touched.update((old, fresh))

    while len(merges) < num_merges and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative_count:
            continue  # a stale heap entry: this pair's count has changed since it was pushed
        if -negative_count < 2:
            break
        new = 256 + len(merges)
        merges.append(pair)
        touched.clear()
        for w in words_with.pop(pair):
            symbols, count = words[w], counts[w]
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
                    # Only the pairs next to a merge change: (left, a) -> (left, new) and
                    # (b, right) -> (new, right); the pair (a, b) itself disappears.
                    if merged:
                        move((merged[-1], pair[0]), (merged[-1], new), count, w)
                    if i + 2 < len(symbols):
                        move((pair[1], symbols[i + 2]), (new, symbols[i + 2]), count, w)
                    pair_counts[pair] -= count
                    merged.append(new)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[w] = merged
        touched.discard(pair)
        del pair_counts[pair]
        for changed in touched:
            if pair_counts[changed] > 0:
                heapq.heappush(heap, (-pair_counts[changed], changed))
            else:
                del pair_counts[changed]
    return BytePairEncoding(merges)


def standardise(text: str) -> list[str]:
    """The words ``TextVectorization`` (default settings) makes of ``text``, in plain Python.

    Lower-case the ASCII letters (``tf.strings.lower`` leaves "É" alone), delete punctuation
    (``"doesn't"`` becomes ``"doesnt"``), split on whitespace. Taught in chapter 11.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    return KERAS_PUNCTUATION.sub("", text.translate(ASCII_LOWER)).split()


def frequency_vocabulary(token_lists: Iterable[Sequence[str]], max_tokens: int | None = None
                         ) -> list[str]:
    """A vocabulary in ``TextVectorization``'s order: ``""`` (padding), ``"[UNK]"``, then the
    tokens by decreasing count, ties broken by *decreasing* token (Keras sorts ascending by
    ``(count, token)`` and reverses), cut to ``max_tokens`` entries in all. Taught in chapter 11.
    """
    if max_tokens is not None:
        max_tokens = _check_int("max_tokens", max_tokens, 3)
    counts = Counter(token for tokens in token_lists for token in tokens)
    ordered = sorted(counts, key=lambda t: (counts[t], t.encode("utf-8")), reverse=True)
    vocabulary = ["", "[UNK]", *ordered]
    return vocabulary if max_tokens is None else vocabulary[:max_tokens]


def vocabulary_hash(tokens: Iterable[str | bytes]) -> str:
    """A 16-hex-digit fingerprint (sha256) of a vocabulary: its tokens, in order.

    Any change — a token added, dropped, spelt differently or moved — changes the hash, so a
    chapter can assert it and learn at once when a library update changes its tokenisation.
    Taught in chapter 11.
    """
    digest = hashlib.sha256()
    for token in tokens:
        if isinstance(token, str):
            token = token.encode("utf-8")
        if not isinstance(token, bytes):
            raise ValueError(f"tokens must be str or bytes, got {type(token).__name__} {token!r}")
        digest.update(len(token).to_bytes(4, "big") + token)  # length-prefixed: ("ab","c") ≠ ("a","bc")
    return digest.hexdigest()[:16]


# --- sentiment classifiers ---------------------------------------------------------------------

def build_bag_of_embeddings(vocab_size: int, sequence_length: int, embedding_dim: int = 32, *,
                            seed: int, name: str = "bag_of_embeddings") -> keras.Model:
    """``ids -> embedding (mask 0) -> masked average -> dense (1, sigmoid)``: an order-blind
    sentiment classifier.

    Id 0 is padding: the mask makes the average run over the real tokens only, so padding
    changes nothing. The logit is ``w · mean(e_t) + b = mean(w · e_t) + b``: each word adds its
    own score ``w · e_t`` (see :func:`word_scores`), wherever it is in the sentence.
    Taught in chapter 11.
    """
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    sequence_length = _check_int("sequence_length", sequence_length, 1)
    embedding_dim = _check_int("embedding_dim", embedding_dim, 1)
    seed = _check_int("seed", seed, 0)
    ids = keras.Input((sequence_length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding",
                               embeddings_initializer=keras.initializers.RandomUniform(
                                   -0.05, 0.05, seed=seed))(ids)
    x = keras.layers.GlobalAveragePooling1D(name="average")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="positive",
                             kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x)
    return keras.Model(ids, out, name=name)


def build_recurrent_classifier(vocab_size: int, sequence_length: int, embedding_dim: int = 32,
                               units: int = 32, *, seed: int,
                               name: str = "bidirectional_lstm") -> keras.Model:
    """``ids -> embedding (mask 0) -> bidirectional LSTM -> dense (1, sigmoid)``: a sentiment
    classifier that reads the words in order, forwards and backwards.

    The mask makes both directions skip the padding: the forward LSTM's last state is the one
    after the last real word, the backward one's after the first. Taught in chapter 11.
    """
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    sequence_length = _check_int("sequence_length", sequence_length, 1)
    embedding_dim = _check_int("embedding_dim", embedding_dim, 1)
    units = _check_int("units", units, 1)
    seed = _check_int("seed", seed, 0)

    def lstm(offset: int, backwards: bool) -> keras.layers.LSTM:
        return keras.layers.LSTM(
            units, go_backwards=backwards,
            kernel_initializer=keras.initializers.GlorotUniform(seed + offset),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed + offset + 1))

    ids = keras.Input((sequence_length,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding",
                               embeddings_initializer=keras.initializers.RandomUniform(
                                   -0.05, 0.05, seed=seed))(ids)
    x = keras.layers.Bidirectional(lstm(1, False), backward_layer=lstm(3, True), name="lstm")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="positive",
                             kernel_initializer=keras.initializers.GlorotUniform(seed + 5))(x)
    return keras.Model(ids, out, name=name)


def word_scores(model: keras.Model) -> np.ndarray:
    """Each token's contribution to the logit of a :func:`build_bag_of_embeddings` model.

    ``scores[t] = w · e_t``, the embedding row of token ``t`` projected on the output layer's
    weight vector ``w``: the model's logit for a sentence is the mean score of its words plus the
    bias. Taught in chapter 11.
    """
    try:
        embeddings = model.get_layer("embedding").embeddings
        weights = model.get_layer("positive").kernel
    except ValueError:
        raise ValueError("model must be a build_bag_of_embeddings model, with layers named "
                         "'embedding' and 'positive'") from None
    if weights.shape[-1] != 1 or embeddings.shape[1] != weights.shape[0]:
        raise ValueError(f"model's output layer must map the {embeddings.shape[1]}-dimensional "
                         f"average to one logit; its kernel has shape {tuple(weights.shape)}")
    return np.asarray(embeddings) @ np.asarray(weights)[:, 0]


class StepTimer(keras.callbacks.Callback):
    """Times every training step of ``fit``: ``seconds`` lists them, :attr:`median_ms` is the
    typical step (the first, which traces and compiles the step, is left out). Taught in
    chapter 11.
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    @property
    def median_ms(self) -> float:
        if len(self.seconds) < 2:
            raise ValueError("StepTimer needs at least two timed steps (the first is left out)")
        return 1000.0 * float(np.median(self.seconds[1:]))


# --- character language models -----------------------------------------------------------------

def _codes(ids: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """The n-gram ending at each position i >= n - 1, as one integer: sum_j ids[i-n+1+j] V^(n-1-j)."""
    codes = np.zeros(len(ids) - n + 1, dtype=np.int64)
    for j in range(n):
        codes = codes * vocab_size + ids[j:len(ids) - n + 1 + j]
    return codes


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``values`` of ``queries`` in the sorted ``keys`` (0 where a query is not a key)."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=values.dtype)
    position = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[position] == queries, values[position], 0)


def _check_order(order: int, vocab_size: int) -> int:
    order = _check_int("order", order, 1)
    if vocab_size ** order >= 2 ** 62:
        raise ValueError(f"order {order} with vocab_size {vocab_size} overflows the 64-bit "
                         f"n-gram codes; use a smaller order or vocabulary")
    return order


def ngram_bits(train_ids, eval_ids, order: int, vocab_size: int,
               smoothing: str = "witten-bell", k: float = 0.1, boundary: int = 0) -> np.ndarray:
    """Bits an n-gram count model trained on ``train_ids`` spends on each symbol of ``eval_ids``.

    The model predicts each symbol from the ``order - 1`` before it; both streams are preceded by
    ``order - 1`` copies of ``boundary`` (the newline that separates sentences, say), so every
    symbol has a full context. Counts are kept as sorted integer codes (NumPy ``unique``) and
    looked up with ``searchsorted``: no Python loop over symbols.

    - ``"add-k"``: ``P(c | h) = (N(h c) + k) / (N(h) + k V)``; an unseen context gives ``1/V``.
    - ``"witten-bell"`` (Witten & Bell 1991): interpolate each order with the one below,
      ``P_n(c | h) = (N(h c) + T(h) P_{n-1}(c | h')) / (N(h) + T(h))``, where ``T(h)`` is the
      number of distinct symbols seen after ``h`` and ``h'`` drops the oldest symbol of ``h``; it
      falls back to ``P_{n-1}`` for an unseen context, and ``P_0 = 1/V``.

    Returns ``-log2 P`` per symbol of ``eval_ids``; its mean is the bits per character.
    Taught in chapter 11.
    """
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    order = _check_order(order, vocab_size)
    train = _check_ids("train_ids", train_ids, vocab_size)
    evaluate = _check_ids("eval_ids", eval_ids, vocab_size)
    if len(train) == 0 or len(evaluate) == 0:
        raise ValueError("train_ids and eval_ids must not be empty")
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
    if isinstance(k, bool) or not isinstance(k, Real) or not k > 0:
        raise ValueError(f"k must be a positive number, got {k!r}")
    boundary = _check_int("boundary", boundary, 0)
    if boundary >= vocab_size:
        raise ValueError(f"boundary must be an id below vocab_size={vocab_size}, got {boundary}")
    pad = np.full(order - 1, boundary, dtype=np.int64)
    train, evaluate = np.concatenate([pad, train]), np.concatenate([pad, evaluate])

    queries_of = {n: _codes(evaluate[order - n:], n, vocab_size) for n in range(1, order + 1)}
    p = np.full(len(evaluate) - order + 1, 1.0 / vocab_size)
    for n in range(order if smoothing == "add-k" else 1, order + 1):
        ngrams, ngram_counts = np.unique(_codes(train[order - n:], n, vocab_size),
                                         return_counts=True)
        contexts, first = np.unique(ngrams // vocab_size, return_index=True)  # ngrams are sorted
        totals = np.add.reduceat(ngram_counts, first)  # N(h)
        seen = _lookup(ngrams, ngram_counts, queries_of[n])
        n_h = _lookup(contexts, totals, queries_of[n] // vocab_size)
        if smoothing == "add-k":
            p = (seen + k) / (n_h + k * vocab_size)
        else:
            followers = np.diff(np.append(first, len(ngrams)))  # T(h): distinct symbols after h
            t_h = _lookup(contexts, followers, queries_of[n] // vocab_size)
            p = np.where(n_h > 0, (seen + t_h * p) / np.maximum(n_h + t_h, 1), p)
    return -np.log2(p)


def ngram_table_size(train_ids, order: int, vocab_size: int, boundary: int = 0) -> int:
    """How many counts an order-``order`` model of :func:`ngram_bits` stores: the distinct
    n-grams of every length 1 … ``order`` in ``train_ids`` (padded as there). The size of the
    model, to compare with a network's parameter count. Taught in chapter 11.
    """
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    order = _check_order(order, vocab_size)
    train = _check_ids("train_ids", train_ids, vocab_size)
    train = np.concatenate([np.full(order - 1, boundary, dtype=np.int64), train])
    return int(sum(len(np.unique(_codes(train[order - n:], n, vocab_size)))
                   for n in range(1, order + 1)))


def context_counts(train_ids, eval_ids, length: int, vocab_size: int, boundary: int = 0
                   ) -> np.ndarray:
    """How many times the ``length`` symbols before each symbol of ``eval_ids`` occur in
    ``train_ids`` (both preceded by ``length`` copies of ``boundary``, as in :func:`ngram_bits`).

    ``length=0`` is the empty context, seen ``len(train_ids)`` times. Taught in chapter 11.
    """
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    length = _check_int("length", length, 0)
    train = _check_ids("train_ids", train_ids, vocab_size)
    evaluate = _check_ids("eval_ids", eval_ids, vocab_size)
    if length == 0:
        return np.full(len(evaluate), len(train), dtype=np.int64)
    _check_order(length, vocab_size)
    pad = np.full(length, boundary, dtype=np.int64)
    train, evaluate = np.concatenate([pad, train]), np.concatenate([pad, evaluate])
    # contexts that precede a symbol: the last window of train has no successor, so drop it
    keys, counts = np.unique(_codes(train[:-1], length, vocab_size), return_counts=True)
    return _lookup(keys, counts, _codes(evaluate[:-1], length, vocab_size))


@keras.saving.register_keras_serializable(package="dlbook")
class CharLanguageModel(keras.Model):
    """A character-level language model: ``ids -> embedding -> GRU -> dense (logits over V)``.

    Called on ``(batch, time)`` ids it returns ``(batch, time, V)`` logits for the next symbol
    at every position (train it with ``fit`` and a from-logits sparse cross-entropy on the ids
    shifted by one). :meth:`sample` continues prompts, one symbol at a time, inside one compiled
    ``tf.function``; its noise comes from the model's own ``keras.random.SeedGenerator``, so a
    model built with the same ``seed`` samples the same text. Taught in chapter 11.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 32, units: int = 128, *, seed: int,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = _check_int("vocab_size", vocab_size, 2)
        self.embedding_dim = _check_int("embedding_dim", embedding_dim, 1)
        self.units = _check_int("units", units, 1)
        self.seed = _check_int("seed", seed, 0)
        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, name="embedding",
            embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed))
        self.gru = keras.layers.GRU(
            units, return_sequences=True, return_state=True, name="gru",
            kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 2))
        self.logits = keras.layers.Dense(
            vocab_size, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed + 3))
        self.seed_generator = keras.random.SeedGenerator(seed + 4)
        self._compiled_sample = None

    def call(self, ids, initial_state=None):
        outputs, _ = self.gru(self.embedding(ids), initial_state=initial_state)
        return self.logits(outputs)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "units": self.units, "seed": self.seed}

    def _sample_graph(self, prompts, temperatures, steps):
        # Read the prompt with the whole-sequence layer, then step the GRU's cell: both use the
        # same weights, so the state after the prompt is the one the cell continues from.
        outputs, state = self.gru(self.embedding(prompts))
        logits = self.logits(outputs[:, -1])
        drawn = tf.TensorArray(tf.int32, size=steps)
        for t in tf.range(steps):
            scaled = logits / temperatures[:, None]
            symbol = tf.cast(keras.random.categorical(scaled, 1, seed=self.seed_generator)[:, 0],
                             tf.int32)
            drawn = drawn.write(t, symbol)
            output, new_state = self.gru.cell(self.embedding(symbol), [state])
            state = new_state[0] if isinstance(new_state, (list, tuple)) else new_state
            logits = self.logits(output)
        return tf.transpose(drawn.stack())

    def sample(self, prompts, steps: int, temperatures) -> np.ndarray:
        """Draw ``steps`` symbols after each prompt; returns ``(batch, steps)`` ids.

        ``prompts``: ``(batch, length)`` ids, length ≥ 1. ``temperatures``: one number, or one
        per prompt. At each step the next symbol is drawn from ``softmax(logits / T)``: T → 0
        approaches always picking the likeliest symbol, T = 1 samples the model's own
        distribution, T > 1 flattens it.
        """
        prompts = np.asarray(prompts)
        if prompts.ndim != 2 or prompts.shape[1] < 1 or not np.issubdtype(prompts.dtype,
                                                                          np.integer):
            raise ValueError(f"prompts must be a (batch, length >= 1) array of integer ids, got "
                             f"shape {prompts.shape} and dtype {prompts.dtype}")
        if prompts.min() < 0 or prompts.max() >= self.vocab_size:
            raise ValueError(f"prompts hold ids outside 0 … {self.vocab_size - 1}")
        steps = _check_int("steps", steps, 1)
        temperatures = np.broadcast_to(np.asarray(temperatures, dtype="float32"),
                                       (len(prompts),))
        if not np.all(temperatures > 0):
            raise ValueError(f"temperatures must be positive, got {temperatures.tolist()}")
        if self._compiled_sample is None:
            self._compiled_sample = tf.function(self._sample_graph, reduce_retracing=True)
        drawn = self._compiled_sample(tf.constant(prompts, tf.int32),
                                      tf.constant(temperatures), tf.constant(steps))
        return np.asarray(drawn)


_COMPILED_SCORERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stream_bits(model: keras.Model, ids, segments: int = 64, boundary: int = 0) -> np.ndarray:
    """Bits ``model`` (ids -> next-symbol logits) spends on each symbol of a long stream ``ids``.

    The stream, preceded by ``boundary``, is cut into ``segments`` contiguous pieces read in
    parallel, each from a fresh state; every symbol is predicted from all the symbols before it
    in its piece. The last ``len(ids) % segments`` symbols are scored as one more, shorter piece.
    One compiled call of the model per piece length, never one per symbol. Taught in chapter 11.
    """
    segments = _check_int("segments", segments, 1)
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) < segments:
        raise ValueError(f"ids must be a 1-D stream of at least segments={segments} ids, got "
                         f"shape {ids.shape}")
    inputs = np.concatenate([[boundary], ids[:-1]]).astype("int32")
    length = len(ids) // segments
    pieces = [(inputs[:length * segments].reshape(segments, length),
               ids[:length * segments].reshape(segments, length))]
    if len(ids) % segments:
        pieces.append((inputs[length * segments:][None], ids[length * segments:][None]))
    if model not in _COMPILED_SCORERS:
        # Compiled once per model for any (batch, time) shape: a graph runs the GRU's time loop
        # about 8x faster than eager execution does.
        # The function holds the model weakly, or the cache would keep every model alive.
        held = weakref.ref(model)
        _COMPILED_SCORERS[model] = tf.function(
            lambda x: tf.nn.log_softmax(held()(x, training=False), axis=-1),
            input_signature=[tf.TensorSpec([None, None], tf.int32)])
    next_log_p = _COMPILED_SCORERS[model]
    bits = []
    for x, y in pieces:
        chosen = tf.gather(next_log_p(tf.constant(x)), tf.constant(y, tf.int32), axis=-1,
                           batch_dims=2)
        bits.append(-np.asarray(chosen).reshape(-1) / np.log(2.0))
    return np.concatenate(bits)
