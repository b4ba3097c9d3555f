"""Attention and transformers: the mechanism in NumPy, the blocks in Keras, and their helpers.

- NumPy references: :func:`softmax`, :func:`scaled_dot_product_attention`,
  :func:`multi_head_attention` (with the weights of a ``keras.layers.MultiHeadAttention``, in its
  layout), :func:`causal_mask`, :func:`padding_mask`, :func:`sinusoidal_encoding`,
  :func:`softmax_entropy`.
- Keras blocks: :class:`PositionalEncoding` (adds the fixed sinusoidal table),
  :func:`transformer_block` (pre-LayerNorm: self-attention, optional cross-attention and a
  feed-forward network, each inside a residual connection), :func:`attention_maps` (the
  weights every attention layer computed) and :func:`plot_attention` (a heat map of them).
- Models: :func:`build_bag_of_embeddings` and :func:`build_text_transformer` (sentiment),
  :func:`build_char_gpt` and :func:`build_char_gru` (next-character models),
  :func:`build_seq2seq_transformer` (an encoder–decoder), with compiled decoding and sampling
  (:func:`make_greedy_decoder`, :func:`make_sampler`) and a compiled training loop
  (:func:`train_steps`).
- Data and scoring: :func:`prepare_g2p` (CMU-dictionary spellings and pronunciations as id
  arrays), :func:`edit_distance`, :func:`ngram_bits_per_char` (count-model baselines).

Taught in chapter 12.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from numbers import Real

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers, ops

from dlbook.checks import check_int as _check_int

PAD = 0


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    return name


# ---------------------------------------------------------------------------------------------
# NumPy references


def softmax(scores, axis: int = -1) -> np.ndarray:
    """The softmax along ``axis``, computed stably (the row maximum is subtracted first).

    Entries equal to ``-inf`` get weight exactly 0; a row that is all ``-inf`` raises, since no
    distribution over an empty set exists. Taught in chapter 12.
    """
    scores = np.asarray(scores, dtype=float)
    top = np.max(scores, axis=axis, keepdims=True)
    if np.any(np.isneginf(top)):
        raise ValueError("softmax: a row is masked everywhere (all -inf): it has no distribution")
    weights = np.exp(scores - top)
    return weights / weights.sum(axis=axis, keepdims=True)


def softmax_entropy(weights, axis: int = -1) -> np.ndarray:
    """Entropy in nats of each distribution along ``axis`` (0 log 0 counts as 0). Chapter 12."""
    weights = np.asarray(weights, dtype=float)
    logs = np.log(np.where(weights > 0, weights, 1.0))
    return -(weights * logs).sum(axis=axis)


def scaled_dot_product_attention(query, key, value, mask=None, scale: float | None = None):
    """Attention of each query over the keys: ``softmax(q kᵀ · scale) v``, and the weights.

    ``query`` is ``(..., T, d_k)``, ``key`` ``(..., S, d_k)``, ``value`` ``(..., S, d_v)``;
    ``mask`` (boolean, broadcastable to ``(..., T, S)``) says which keys each query may attend
    to (``True`` = allowed). ``scale`` defaults to ``1/√d_k``. Returns ``(output, weights)``:
    ``output`` is ``(..., T, d_v)``, ``weights`` ``(..., T, S)`` with rows summing to 1.
    Taught in chapter 12.
    """
    query, key, value = (np.asarray(a, dtype=float) for a in (query, key, value))
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError("query, key and value must be at least 2-D (..., length, depth), got "
                         f"shapes {query.shape}, {key.shape}, {value.shape}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must have the same depth d_k, got {query.shape[-1]} "
                         f"and {key.shape[-1]}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value must have the same length S, got {key.shape[-2]} and "
                         f"{value.shape[-2]}")
    scale = 1.0 / np.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = query @ np.swapaxes(key, -1, -2) * scale
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
        try:
            mask = np.broadcast_to(mask, scores.shape)
        except ValueError:
            raise ValueError(f"mask of shape {mask.shape} does not broadcast to the scores' "
                             f"shape {scores.shape} (..., T, S)") from None
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ value, weights


def multi_head_attention(query, value, weights, key=None, mask=None):
    """Multi-head attention in NumPy, with the weights of a ``keras.layers.MultiHeadAttention``.

    ``weights`` is ``layer.get_weights()`` of a layer built with biases, in Keras's order and
    layout: query kernel ``(d, h, d_k)`` and bias ``(h, d_k)``, key kernel and bias (the same
    shapes), value kernel ``(d, h, d_v)`` and bias ``(h, d_v)``, output kernel
    ``(h, d_v, d_out)`` and bias ``(d_out,)``. ``query`` is ``(B, T, d)``, ``value`` (and
    ``key``, which defaults to ``value``) ``(B, S, d)``; ``mask`` as in
    :func:`scaled_dot_product_attention`, broadcastable to ``(B, T, S)``.

    Each head projects the inputs with its own slice of the kernels, attends, and the output
    projection sums the heads' results. Returns ``(output (B, T, d_out), weights (B, h, T, S))``.
    Taught in chapter 12.
    """
    if not isinstance(weights, (list, tuple)) or len(weights) != 8:
        raise ValueError("weights must be the 8 arrays of a MultiHeadAttention layer with biases "
                         f"(layer.get_weights()), got {type(weights).__name__} of length "
                         f"{len(weights) if hasattr(weights, '__len__') else '?'}")
    wq, bq, wk, bk, wv, bv, wo, bo = (np.asarray(w, dtype=float) for w in weights)
    query = np.asarray(query, dtype=float)
    value = np.asarray(value, dtype=float)
    key = value if key is None else np.asarray(key, dtype=float)
    for argument, array in (("query", query), ("key", key), ("value", value)):
        if array.ndim != 3 or array.shape[-1] != wq.shape[0]:
            raise ValueError(f"{argument} must be (batch, length, {wq.shape[0]}) for these "
                             f"weights, got shape {array.shape}")
    q = np.einsum("btd,dhk->bhtk", query, wq) + bq[None, :, None, :]
    k = np.einsum("bsd,dhk->bhsk", key, wk) + bk[None, :, None, :]
    v = np.einsum("bsd,dhv->bhsv", value, wv) + bv[None, :, None, :]
    if mask is not None:
        mask = np.asarray(mask)[:, None] if np.ndim(mask) == 3 else mask
    heads, attention = scaled_dot_product_attention(q, k, v, mask)
    return np.einsum("bhtv,hvo->bto", heads, wo) + bo, attention


def causal_mask(length: int) -> np.ndarray:
    """``(length, length)`` boolean mask: query ``t`` may attend to keys ``0 … t``. Chapter 12."""
    length = _check_int("length", length)
    return np.tril(np.ones((length, length), dtype=bool))


def padding_mask(token_ids, pad_id: int = PAD) -> np.ndarray:
    """``(B, 1, S)`` boolean mask: every query may attend to the keys that are not padding.

    It broadcasts against ``(B, T, S)`` scores; combine it with :func:`causal_mask` by ``&``.
    Taught in chapter 12.
    """
    token_ids = np.asarray(token_ids)
    if token_ids.ndim != 2 or not np.issubdtype(token_ids.dtype, np.integer):
        raise ValueError(f"token_ids must be a 2-D integer array (batch, length), got shape "
                         f"{token_ids.shape} and dtype {token_ids.dtype}")
    return (token_ids != pad_id)[:, None, :]


def sinusoidal_encoding(length: int, depth: int, base: float = 10000.0) -> np.ndarray:
    """The sinusoidal positional encodings of Vaswani et al. (2017): a ``(length, depth)`` array.

    Row ``p`` is ``[sin(p ω₀), cos(p ω₀), sin(p ω₁), cos(p ω₁), …]`` with frequencies
    ``ω_i = base^(−2i/depth)``: each (sin, cos) pair is a point on a circle turning at its own
    speed, so moving ``k`` positions rotates every pair by the angle ``k ω_i``. ``depth`` must be
    even. Taught in chapter 12.
    """
    length = _check_int("length", length)
    depth = _check_int("depth", depth, minimum=2)
    if depth % 2:
        raise ValueError(f"depth must be even (sin and cos come in pairs), got {depth}")
    if isinstance(base, bool) or not isinstance(base, Real) or base <= 1:
        raise ValueError(f"base must be a number above 1, got {base!r}")
    frequencies = float(base) ** (-np.arange(0, depth, 2) / depth)
    angles = np.arange(length)[:, None] * frequencies[None, :]
    table = np.empty((length, depth))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table


# ---------------------------------------------------------------------------------------------
# Keras blocks


@keras.saving.register_keras_serializable(package="dlbook")
class PositionalEncoding(layers.Layer):
    """Adds the fixed :func:`sinusoidal_encoding` to a ``(batch, length, depth)`` input.

    It has no weights: position ``p`` always gets the same vector, whatever the data. Inputs
    shorter than ``max_length`` get the first rows of the table. Taught in chapter 12.
    """

    def __init__(self, max_length: int, base: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_length = _check_int("max_length", max_length)
        self.base = base

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"PositionalEncoding expects (batch, length, depth) inputs with a "
                             f"known depth, got {input_shape}")
        if input_shape[1] is not None and input_shape[1] > self.max_length:
            raise ValueError(f"inputs of length {input_shape[1]} exceed max_length "
                             f"{self.max_length}")
        self.table = sinusoidal_encoding(self.max_length, int(input_shape[-1]), self.base)

    def call(self, inputs):
        table = ops.convert_to_tensor(self.table, dtype=inputs.dtype)
        return inputs + table[None, :ops.shape(inputs)[1], :]

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length, "base": self.base}


def transformer_block(x, num_heads: int, key_dim: int, ff_dim: int, *, attention_mask=None,
                      causal: bool = False, context=None, context_mask=None, dropout: float = 0.0,
                      seed: int | None = None, name: str = "block"):
    """One pre-LayerNorm transformer block on a Keras tensor ``x`` of shape ``(B, T, d)``.

    ``x + SelfAttention(LayerNorm(x))``; then, if ``context`` (an encoder's output, ``(B, S, d)``)
    is given, ``+ CrossAttention(LayerNorm(·), context)``; then ``+ FeedForward(LayerNorm(·))``,
    where the feed-forward network is ``Dense(ff_dim, gelu) → Dense(d)`` applied to every position
    alone. Normalising *before* each sublayer keeps the residual path an identity, which trains
    more stably than normalising after the sum (the 2017 original).

    ``attention_mask`` (boolean, ``(B, 1, T)`` or ``(B, T, T)``) hides padded keys from the
    self-attention; ``causal=True`` also lets position ``t`` see only positions ``≤ t`` (a
    decoder). ``context_mask`` (``(B, 1, S)``) hides padded encoder positions from the
    cross-attention. ``dropout`` applies to the attention weights and sublayer outputs; its
    layers are seeded ``seed``, ``seed + 1``, … (up to ``seed + 4``), so that no two draw the same
    masks. Layers are named ``{name}_…``. Taught in chapter 12.
    """
    num_heads = _check_int("num_heads", num_heads)
    key_dim = _check_int("key_dim", key_dim)
    ff_dim = _check_int("ff_dim", ff_dim)
    name = _check_name(name)
    if len(x.shape) != 3 or x.shape[-1] is None:
        raise ValueError(f"x must be a (batch, length, depth) tensor, got shape {x.shape}")
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if context_mask is not None and context is None:
        raise ValueError("context_mask was given without a context to attend to")
    depth = x.shape[-1]
    seeds = iter(range(seed, seed + 5)) if seed is not None else iter([None] * 5)

    def sublayer_output(h, label):
        if dropout:
            h = layers.Dropout(dropout, seed=next(seeds), name=f"{name}_{label}_dropout")(h)
        return h

    h = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm_attention")(x)
    # The attention weights are returned too, so that attention_maps() can read them.
    h, _ = layers.MultiHeadAttention(num_heads, key_dim, dropout=dropout, seed=next(seeds),
                                     name=f"{name}_self_attention")(
        h, h, attention_mask=attention_mask, use_causal_mask=causal,
        return_attention_scores=True)
    x = layers.Add(name=f"{name}_residual_attention")([x, sublayer_output(h, "attention")])
    if context is not None:
        h = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm_cross")(x)
        h, _ = layers.MultiHeadAttention(num_heads, key_dim, dropout=dropout, seed=next(seeds),
                                         name=f"{name}_cross_attention")(
            h, context, attention_mask=context_mask, return_attention_scores=True)
        x = layers.Add(name=f"{name}_residual_cross")([x, sublayer_output(h, "cross")])
    h = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm_feed_forward")(x)
    h = layers.Dense(ff_dim, activation="gelu", name=f"{name}_feed_forward_1")(h)
    h = layers.Dense(depth, name=f"{name}_feed_forward_2")(h)
    return layers.Add(name=f"{name}_residual_feed_forward")([x, sublayer_output(h, "feed_forward")])


def _embed(tokens, vocab_size: int, dim: int, positions: bool, max_length: int, name: str):
    x = layers.Embedding(vocab_size, dim, name=f"{name}embedding")(tokens)
    # Keras initialises embeddings in ±0.05; scaled by √dim they are not drowned by the
    # positional encodings, whose entries are of size 1 (Vaswani et al. scale them the same way).
    x = layers.Rescaling(float(np.sqrt(dim)), name=f"{name}embedding_scale")(x)
    if positions:
        x = PositionalEncoding(max_length, name=f"{name}positions")(x)
    return x


def _key_padding_mask(tokens):
    """``(B, 1, S)``: the non-padding keys, as a boolean tensor (Keras ops on a Keras tensor)."""
    return ops.expand_dims(ops.not_equal(tokens, PAD), 1)


def build_bag_of_embeddings(vocab_size: int, length: int, dim: int = 32,
                            name: str = "bag_of_embeddings") -> keras.Model:
    """Sentiment baseline: the mean of the word embeddings (padding excluded), then a logistic unit.

    Token ids ``(B, length)`` with 0 as padding → one logit (``positive`` when > 0). Word order
    is invisible to it. Re-created in chapter 12 as the baseline chapter 11 teaches.
    """
    vocab_size, length, dim = (_check_int(a, v, 2 if a == "vocab_size" else 1) for a, v in
                               (("vocab_size", vocab_size), ("length", length), ("dim", dim)))
    tokens = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, dim, name="embedding")(tokens)
    x = layers.GlobalAveragePooling1D(name="mean")(x, mask=ops.not_equal(tokens, PAD))
    return keras.Model(tokens, layers.Dense(1, name="logit")(x), name=_check_name(name))


def _check_sizes(vocab_size, length, dim, num_heads, blocks) -> tuple[int, int, int, int, int]:
    """The sizes of a transformer model, checked: ``dim`` must split evenly into the heads."""
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    length, dim, num_heads, blocks = (_check_int(a, v) for a, v in (
        ("length", length), ("dim", dim), ("num_heads", num_heads), ("blocks", blocks)))
    if dim % num_heads:
        raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
    return vocab_size, length, dim, num_heads, blocks


def build_text_transformer(vocab_size: int, length: int, dim: int = 32, num_heads: int = 2,
                           ff_dim: int = 64, blocks: int = 1, positions: bool = True,
                           dropout: float = 0.0, seed: int | None = None,
                           name: str = "text_transformer") -> keras.Model:
    """A transformer encoder classifier: embeddings (+ sinusoidal positions), ``blocks`` pre-LN
    encoder blocks with a padding mask, a final LayerNorm, the mean over non-padding positions,
    one logit.

    Token ids ``(B, length)``, 0 = padding. ``positions=False`` leaves out the positional encoding,
    which makes the model blind to word order. Taught in chapter 12.
    """
    vocab_size, length, dim, num_heads, blocks = _check_sizes(vocab_size, length, dim, num_heads,
                                                              blocks)
    tokens = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = _embed(tokens, vocab_size, dim, positions, length, "")
    keys = _key_padding_mask(tokens)
    for index in range(1, blocks + 1):
        x = transformer_block(x, num_heads, dim // num_heads, ff_dim, attention_mask=keys,
                              dropout=dropout, seed=None if seed is None else seed + 5 * index,
                              name=f"encoder_{index}")
    x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    x = layers.GlobalAveragePooling1D(name="mean")(x, mask=ops.not_equal(tokens, PAD))
    return keras.Model(tokens, layers.Dense(1, name="logit")(x), name=_check_name(name))


def build_char_gpt(vocab_size: int, length: int, dim: int = 64, num_heads: int = 4,
                   ff_dim: int = 128, blocks: int = 2, positions: bool = True,
                   name: str = "char_gpt") -> keras.Model:
    """A decoder-only (GPT-style) next-token model: ids ``(B, length)`` → logits ``(B, length, V)``.

    Embeddings plus sinusoidal positions, ``blocks`` pre-LN blocks with a causal mask (position
    ``t`` sees only ``0 … t``, so the logits at ``t`` predict token ``t + 1`` from the past alone),
    a final LayerNorm and a linear read-out. Taught in chapter 12.
    """
    vocab_size, length, dim, num_heads, blocks = _check_sizes(vocab_size, length, dim, num_heads,
                                                              blocks)
    tokens = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = _embed(tokens, vocab_size, dim, positions, length, "")
    for index in range(1, blocks + 1):
        x = transformer_block(x, num_heads, dim // num_heads, ff_dim, causal=True,
                              name=f"decoder_{index}")
    x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    return keras.Model(tokens, layers.Dense(vocab_size, name="logits")(x), name=_check_name(name))


def build_char_gru(vocab_size: int, length: int, units: int = 128, dim: int = 32,
                   name: str = "char_gru") -> keras.Model:
    """A recurrent next-token model: embeddings → GRU(``units``) → logits ``(B, length, V)``.

    The baseline for :func:`build_char_gpt` (chapter 10 teaches the GRU; chapter 12 compares).
    """
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    length, units, dim = (_check_int(a, v) for a, v in
                          (("length", length), ("units", units), ("dim", dim)))
    tokens = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, dim, name="embedding")(tokens)
    x = layers.GRU(units, return_sequences=True, name="gru")(x)
    return keras.Model(tokens, layers.Dense(vocab_size, name="logits")(x), name=_check_name(name))


def build_seq2seq_transformer(source_vocab: int, target_vocab: int, source_length: int,
                              target_length: int, dim: int = 64, num_heads: int = 4,
                              ff_dim: int = 128, encoder_blocks: int = 1, decoder_blocks: int = 1,
                              positions: bool = True,
                              name: str = "seq2seq_transformer") -> keras.Model:
    """An encoder–decoder transformer: ``[source ids (B, S), decoder input ids (B, T)]`` →
    logits ``(B, T, target_vocab)``.

    The encoder (pre-LN blocks with a source padding mask) reads the source; each decoder block
    attends causally to the decoder's own input (the target shifted right behind a start token:
    teacher forcing) and then, by cross-attention, to the encoder's output. ``positions=False``
    removes the sinusoidal encodings on both sides: the encoder then sees its input as a set.
    0 is padding in both vocabularies. Taught in chapter 12.
    """
    source_vocab = _check_int("source_vocab", source_vocab, 2)
    target_vocab = _check_int("target_vocab", target_vocab, 2)
    source_length, target_length, dim = (
        _check_int(a, v) for a, v in (("source_length", source_length),
                                      ("target_length", target_length), ("dim", dim)))
    encoder_blocks = _check_int("encoder_blocks", encoder_blocks)
    decoder_blocks = _check_int("decoder_blocks", decoder_blocks)
    num_heads = _check_int("num_heads", num_heads)
    if dim % num_heads:
        raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
    source = keras.Input(shape=(source_length,), dtype="int32", name="source")
    target_in = keras.Input(shape=(target_length,), dtype="int32", name="decoder_input")
    source_keys = _key_padding_mask(source)
    x = _embed(source, source_vocab, dim, positions, source_length, "source_")
    for index in range(1, encoder_blocks + 1):
        x = transformer_block(x, num_heads, dim // num_heads, ff_dim, attention_mask=source_keys,
                              name=f"encoder_{index}")
    memory = layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")(x)
    y = _embed(target_in, target_vocab, dim, positions, target_length, "target_")
    for index in range(1, decoder_blocks + 1):
        y = transformer_block(y, num_heads, dim // num_heads, ff_dim, causal=True, context=memory,
                              context_mask=source_keys, name=f"decoder_{index}")
    y = layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")(y)
    logits = layers.Dense(target_vocab, name="logits")(y)
    return keras.Model([source, target_in], logits, name=_check_name(name))


def attention_maps(model: keras.Model, inputs) -> dict[str, np.ndarray]:
    """The attention weights of every ``MultiHeadAttention`` layer of ``model`` on ``inputs``.

    Returns ``{layer name: weights (B, heads, T, S)}`` for a model built from
    :func:`transformer_block` (whose attention layers also output their weights); one forward
    pass, in inference mode. Taught in chapter 12.
    """
    names = [layer.name for layer in model.layers
             if isinstance(layer, layers.MultiHeadAttention)]
    if not names:
        raise ValueError(f"model {model.name!r} has no MultiHeadAttention layer")
    outputs = [model.get_layer(n).output for n in names]
    if any(not isinstance(o, (list, tuple)) for o in outputs):
        raise ValueError("the attention layers must be called with return_attention_scores=True "
                         "(build the model with transformer_block)")
    inspector = keras.Model(model.input, [o[1] for o in outputs])
    weights = inspector(inputs, training=False)
    weights = weights if isinstance(weights, (list, tuple)) else [weights]  # one layer: a tensor
    return {n: np.asarray(w) for n, w in zip(names, weights, strict=True)}


def plot_attention(weights, query_labels=None, key_labels=None, title: str = "Attention weights",
                   xlabel: str = "key", ylabel: str = "query", ax=None, vmax: float | None = None):
    """A heat map of one ``(T, S)`` attention matrix: row ``t`` is query ``t``'s weights.

    Labels (if given) name the queries and keys on the axes; the colour bar counts the weight
    (0 … ``vmax``, default the largest weight). Draws into ``ax`` if given and returns its Figure.
    Taught in chapter 12.
    """
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2:
        raise ValueError(f"weights must be one (queries, keys) matrix, got shape {weights.shape}")
    for argument, labels, size in (("query_labels", query_labels, weights.shape[0]),
                                   ("key_labels", key_labels, weights.shape[1])):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{argument} has {len(labels)} labels for {size} rows/columns")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(3.0, 0.35 * weights.shape[1] + 1.5),
                                      max(2.5, 0.3 * weights.shape[0] + 1.2)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto",
                      interpolation="nearest")
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), query_labels)
    if key_labels is not None:
        ax.set_xticks(range(len(key_labels)), key_labels, rotation=90)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.figure.colorbar(image, ax=ax, label="attention weight")
    return ax.figure


# ---------------------------------------------------------------------------------------------
# Compiled decoding and sampling


def make_greedy_decoder(model: keras.Model, start_id: int, end_id: int):
    """A compiled function ``decode(source) → ids (B, T)``: greedy decoding for ``model``.

    ``model`` is a :func:`build_seq2seq_transformer` model. Decoding starts from
    ``[start, pad, pad, …]``; step ``t`` runs the model once on the whole batch and writes the
    most likely token at position ``t`` into the decoder input for step ``t + 1``, all inside one
    ``tf.function`` loop (no Python loop calling ``predict``). The causal mask makes the pads to
    the right of ``t`` invisible. After a sequence emits ``end_id``, it emits only padding.
    Returns the ``T`` generated ids of each sequence (the start token is not included).
    Taught in chapter 12.
    """
    target_length = model.inputs[1].shape[1]
    start_id, end_id = _check_int("start_id", start_id, 0), _check_int("end_id", end_id, 0)

    @tf.function(reduce_retracing=True)
    def decode(source):
        batch = tf.shape(source)[0]
        columns = tf.range(target_length)[None, :]
        decoder_input = tf.concat([tf.fill([batch, 1], start_id),
                                   tf.zeros([batch, target_length - 1], tf.int32)], axis=1)
        output = tf.zeros([batch, target_length], tf.int32)
        finished = tf.zeros([batch], tf.bool)
        for t in tf.range(target_length):
            logits = model([source, decoder_input], training=False)
            token = tf.argmax(logits[:, t, :], axis=-1, output_type=tf.int32)
            token = tf.where(finished, PAD, token)
            finished = finished | tf.equal(token, end_id)
            output = tf.where(columns == t, token[:, None], output)
            decoder_input = tf.where(columns == t + 1, token[:, None], decoder_input)
        return output

    return decode


def make_sampler(model: keras.Model):
    """A compiled function ``sample(prompt, steps, temperature, seed) → ids`` for a next-token model.

    ``model`` maps ids ``(B, L)`` to logits ``(B, L, V)`` (:func:`build_char_gpt` or
    :func:`build_char_gru`). ``prompt`` is ``(B, P)`` ids with ``P ≥ 1``; each of ``steps`` new
    tokens is drawn from ``softmax(logits / temperature)`` at the last filled position of a window
    of the model's length ``L`` that slides over the text so far (the whole window is recomputed
    each step: simple, and O(L²) per token). The draws come from stateless random ops keyed by
    ``(seed, step)``, so the same seed gives the same text. The loop runs inside one
    ``tf.function``. Returns ``(B, P + steps)`` ids, prompt included. Taught in chapter 12.
    """
    window = model.inputs[0].shape[1]

    @tf.function(reduce_retracing=True)
    def run(prompt, steps, temperature, seed):
        prompt = tf.convert_to_tensor(prompt, tf.int32)
        batch, prompt_length = tf.shape(prompt)[0], tf.shape(prompt)[1]
        total = tf.maximum(prompt_length + steps, window)
        text = tf.concat([prompt, tf.zeros([batch, total - prompt_length], tf.int32)], axis=1)
        columns = tf.range(total)[None, :]
        for t in tf.range(prompt_length, prompt_length + steps):
            start = tf.maximum(t - window, 0)
            logits = model(text[:, start:start + window], training=False)[:, t - 1 - start, :]
            token = tf.random.stateless_categorical(
                logits / temperature, 1, seed=tf.stack([seed, t]), dtype=tf.int32)
            text = tf.where(columns == t, token, text)
        return text[:, :prompt_length + steps]

    def sample(prompt, steps: int, temperature: float = 1.0, seed: int | None = None):
        prompt = np.asarray(prompt)
        if prompt.ndim != 2 or prompt.shape[1] < 1:
            raise ValueError(f"prompt must be (batch, length ≥ 1) ids, got shape {prompt.shape}")
        steps = _check_int("steps", steps)
        if isinstance(temperature, bool) or not isinstance(temperature, Real) or temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        if seed is None:
            raise ValueError("sample needs a seed (derive it from the chapter's SEED)")
        return np.asarray(run(prompt.astype("int32"), tf.constant(steps, tf.int32),
                              tf.constant(float(temperature), tf.float32),
                              tf.constant(_check_int("seed", seed, 0), tf.int32)))

    return sample


# ---------------------------------------------------------------------------------------------
# Data, scoring and timing


@dataclass(frozen=True)
class G2PData:
    """Spellings and pronunciations as id arrays (see :func:`prepare_g2p`)."""

    words: np.ndarray          # (N,) the spellings, lower case
    pronunciations: np.ndarray  # (N,) phonemes without stress, space-separated
    source: np.ndarray          # (N, max_letters) letter ids, 0-padded
    decoder_input: np.ndarray   # (N, T) start, phoneme ids, then padding
    target: np.ndarray          # (N, T) phoneme ids, end, then padding
    letters: tuple[str, ...]    # id → letter ("" for padding)
    phonemes: tuple[str, ...]   # id → phoneme ("", "<start>", "<end>", then the 39 phonemes)

    START, END = 1, 2

    def spell(self, ids) -> str:
        return "".join(self.letters[i] for i in ids if i != PAD)

    def pronounce(self, ids) -> str:
        """Phoneme ids → space-separated phonemes, up to the end token."""
        out = []
        for i in ids:
            if i in (PAD, self.END):
                break
            out.append(self.phonemes[i])
        return " ".join(out)


def prepare_g2p(dictionary: pd.DataFrame, min_letters: int = 4, max_letters: int = 10) -> G2PData:
    """CMU-dictionary entries (``dlbook.data.load_cmudict()``) as a grapheme→phoneme task.

    Keeps words of ``min_letters``–``max_letters`` letters a–z only (no apostrophes, digits or
    dots), removes the stress digits from the vowels (``AH0`` → ``AH``: 39 phonemes remain) and
    encodes letters and phonemes as ids, 0 being padding. The decoder input is the pronunciation
    behind a start token; the target is the pronunciation followed by an end token (teacher
    forcing). Both have length ``longest pronunciation + 1``. Taught in chapter 12.
    """
    if not isinstance(dictionary, pd.DataFrame) or not {"word", "phonemes"} <= set(dictionary):
        raise ValueError("dictionary must be a DataFrame with columns 'word' and 'phonemes' "
                         "(dlbook.data.load_cmudict())")
    min_letters = _check_int("min_letters", min_letters)
    max_letters = _check_int("max_letters", max_letters)
    if max_letters < min_letters:
        raise ValueError(f"max_letters ({max_letters}) is below min_letters ({min_letters})")
    pattern = re.compile(rf"[a-z]{{{min_letters},{max_letters}}}")
    keep = dictionary["word"].map(lambda w: bool(pattern.fullmatch(w)))
    if not keep.any():
        raise ValueError(f"no word of {min_letters}–{max_letters} letters a–z in the dictionary")
    words = dictionary.loc[keep, "word"].to_numpy()
    sounds = [re.sub(r"\d", "", p).split() for p in dictionary.loc[keep, "phonemes"]]
    letters = ("",) + tuple("abcdefghijklmnopqrstuvwxyz")
    phonemes = ("", "<start>", "<end>") + tuple(sorted({p for s in sounds for p in s}))
    letter_id = {c: i for i, c in enumerate(letters)}
    phoneme_id = {p: i for i, p in enumerate(phonemes)}
    target_length = max(len(s) for s in sounds) + 1
    source = np.zeros((len(words), max_letters), dtype="int32")
    decoder_input = np.zeros((len(words), target_length), dtype="int32")
    target = np.zeros((len(words), target_length), dtype="int32")
    for row, (word, sound) in enumerate(zip(words, sounds, strict=True)):
        source[row, :len(word)] = [letter_id[c] for c in word]
        ids = [phoneme_id[p] for p in sound]
        decoder_input[row, :len(ids) + 1] = [G2PData.START, *ids]
        target[row, :len(ids) + 1] = [*ids, G2PData.END]
    return G2PData(words, np.array([" ".join(s) for s in sounds]), source, decoder_input, target,
                   letters, phonemes)


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (insertions, deletions, substitutions cost 1).

    Phoneme error rate = edit distance to the reference / reference length. Taught in chapter 12.
    """
    a, b = list(a), list(b)
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def ngram_bits_per_char(train_ids, eval_ids, vocab_size: int, order: int,
                        alpha: float = 0.1) -> float:
    """Bits per character of an add-``alpha`` ``order``-gram count model on ``eval_ids``.

    The model predicts each character from the ``order − 1`` before it, with probabilities
    ``(count + alpha) / (context count + alpha · vocab_size)`` counted on ``train_ids``. The first
    ``order − 1`` characters of ``eval_ids`` are only context. ``order`` 1 is the unigram model.
    The baseline a character language model must beat; re-created in chapter 12 (chapter 11
    teaches it).
    """
    vocab_size = _check_int("vocab_size", vocab_size, 2)
    order = _check_int("order", order)
    if vocab_size ** order > 20_000_000:
        raise ValueError(f"a dense {order}-gram table over {vocab_size} symbols is too big "
                         f"({vocab_size ** order:,} cells); use a lower order")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or alpha <= 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    train_ids, eval_ids = (np.asarray(a, dtype=np.int64) for a in (train_ids, eval_ids))
    for argument, ids in (("train_ids", train_ids), ("eval_ids", eval_ids)):
        if ids.ndim != 1 or len(ids) < order + 1 or ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"{argument} must be a 1-D array of more than {order} ids in "
                             f"[0, {vocab_size}), got shape {ids.shape}")

    def codes(ids):  # each n-gram as one integer, the context as another
        n = len(ids) - order + 1
        gram = np.zeros(n, dtype=np.int64)
        for offset in range(order):
            gram = gram * vocab_size + ids[offset:offset + n]
        return gram, gram // vocab_size

    gram, context = codes(train_ids)
    gram_counts = np.bincount(gram, minlength=vocab_size ** order)
    context_counts = np.bincount(context, minlength=vocab_size ** (order - 1))
    gram, context = codes(eval_ids)
    probability = (gram_counts[gram] + alpha) / (context_counts[context] + alpha * vocab_size)
    return float(-np.log2(probability).mean())


@dataclass(frozen=True)
class TrainingLog:
    """What :func:`train_steps` did: the loss of every step and what the training cost."""

    losses: np.ndarray   # (steps,) the training loss of each step
    step_seconds: float  # median wall-clock time of a step, the first steps (tracing) left out
    cpu_seconds: float   # process CPU time of the whole run (all threads, tracing included)

    @property
    def steps(self) -> int:
        return len(self.losses)


def train_steps(model: keras.Model, inputs, targets, loss, *, steps: int, batch_size: int,
                learning_rate: float, seed: int) -> TrainingLog:
    """Train ``model`` for ``steps`` Adam steps on mini-batches of ``(inputs, targets)``.

    ``inputs`` is an array, or a list of arrays for a model with several inputs; the examples are
    visited in an order shuffled by ``seed``, reshuffled after each pass. The step (forward pass,
    loss, gradients, update) is one ``tf.function`` traced once: the loop ``fit`` runs, without the
    machinery around it (callbacks, metrics, distribution), which halves the time spent tracing a
    small model. ``loss`` is a Keras loss object. Taught in chapter 12.
    """
    steps, batch_size = _check_int("steps", steps), _check_int("batch_size", batch_size)
    seed = _check_int("seed", seed, 0)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, Real) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    several = isinstance(inputs, (list, tuple))
    arrays = [np.asarray(a) for a in (inputs if several else [inputs])]
    targets = np.asarray(targets)
    count = len(targets)
    if any(len(a) != count for a in arrays):
        raise ValueError(f"inputs and targets must have the same number of examples, got "
                         f"{[len(a) for a in arrays]} and {count}")
    if count < batch_size:
        raise ValueError(f"batch_size {batch_size} is larger than the {count} examples")
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(batch_inputs, batch_targets):
        with tf.GradientTape() as tape:
            value = loss(batch_targets, model(batch_inputs if several else batch_inputs[0],
                                              training=True))
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return value

    rng = np.random.default_rng(seed)
    per_pass = count // batch_size
    losses, times = np.empty(steps), []
    cpu_start = time.process_time()
    for index in range(steps):
        if index % per_pass == 0:
            order = rng.permutation(count)
        rows = order[(index % per_pass) * batch_size:(index % per_pass + 1) * batch_size]
        started = time.perf_counter()
        losses[index] = float(step([a[rows] for a in arrays], targets[rows]))
        times.append(time.perf_counter() - started)
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"training diverged: the loss became {losses[-1]} "
                                 "(lower the learning rate)")
    skip = min(5, steps - 1)
    return TrainingLog(losses, float(np.median(times[skip:])), time.process_time() - cpu_start)
