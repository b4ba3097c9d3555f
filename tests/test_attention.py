"""Unit tests of dlbook.attention: attention by hand, masks, positions and transformer builders
(chapter 12).

References: ``keras.layers.MultiHeadAttention`` (float64, the same weights) and
``keras.ops.dot_product_attention``, loops written out, closed-form parameter counts, and the
properties a model must have whatever its weights (causality bit for bit, permutation
equivariance without positions).
"""

import keras
import matplotlib
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from dlbook.attention import (
    PositionalEncoding,
    attention_maps,
    build_bag_of_embeddings,
    build_char_gpt,
    build_char_gru,
    build_seq2seq_transformer,
    build_text_transformer,
    causal_mask,
    edit_distance,
    make_greedy_decoder,
    make_sampler,
    multi_head_attention,
    ngram_bits_per_char,
    padding_mask,
    plot_attention,
    prepare_g2p,
    scaled_dot_product_attention,
    sinusoidal_encoding,
    softmax,
    softmax_entropy,
    train_steps,
    transformer_block,
)

matplotlib.use("Agg")


# --- softmax and scaled dot-product attention ------------------------------------------------

def test_softmax_is_stable_and_masks_exactly():
    weights = softmax([[1000.0, 1000.0, -np.inf], [0.0, np.log(3.0), -1.0]])
    np.testing.assert_allclose(weights[0], [0.5, 0.5, 0.0])
    assert weights[0, 2] == 0.0
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(weights[1, 1] / weights[1, 0], 3.0)
    with pytest.raises(ValueError, match="masked everywhere"):
        softmax([[-np.inf, -np.inf]])


def test_softmax_entropy_of_uniform_and_one_hot():
    np.testing.assert_allclose(softmax_entropy(np.full((2, 8), 1 / 8)), np.log(8))
    np.testing.assert_allclose(softmax_entropy([[0.0, 1.0, 0.0]]), 0.0)


def test_scaled_dot_product_attention_matches_a_loop():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(4, 3)), rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    out, weights = scaled_dot_product_attention(q, k, v)
    for t in range(4):
        scores = np.array([q[t] @ k[s] / np.sqrt(3) for s in range(6)])
        alpha = np.exp(scores) / np.exp(scores).sum()
        np.testing.assert_allclose(weights[t], alpha, rtol=1e-12)
        np.testing.assert_allclose(out[t], alpha @ v, rtol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_scaled_dot_product_attention_matches_keras_ops(causal):
    rng = np.random.default_rng(1)
    q, k, v = (rng.normal(size=(2, 5, 3, 4)) for _ in range(3))  # (B, T, heads, depth)
    reference = keras.ops.dot_product_attention(q, k, v, is_causal=causal)
    mask = causal_mask(5) if causal else None
    ours, _ = scaled_dot_product_attention(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3),
                                           v.transpose(0, 2, 1, 3), mask=mask)
    np.testing.assert_allclose(ours.transpose(0, 2, 1, 3), np.asarray(reference), atol=1e-6)


def test_scaled_dot_product_attention_scale_and_mask():
    q, k = np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    v = np.array([[1.0], [2.0], [3.0]])
    _, weights = scaled_dot_product_attention(q, k, v, scale=2.0)
    np.testing.assert_allclose(weights, softmax([[2.0, 0.0, -2.0]]))
    out, weights = scaled_dot_product_attention(q, k, v, mask=np.array([[False, True, True]]))
    assert weights[0, 0] == 0.0
    np.testing.assert_allclose(out, weights[:, 1:] @ v[1:])


def test_scaled_dot_product_attention_argument_errors():
    q, k, v = np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 5))
    with pytest.raises(ValueError, match="same depth"):
        scaled_dot_product_attention(q, np.ones((4, 2)), v)
    with pytest.raises(ValueError, match="same length"):
        scaled_dot_product_attention(q, k, np.ones((3, 5)))
    with pytest.raises(ValueError, match="at least 2-D"):
        scaled_dot_product_attention(np.ones(3), k, v)
    with pytest.raises(ValueError, match="boolean"):
        scaled_dot_product_attention(q, k, v, mask=np.ones((2, 4)))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, k, v, mask=np.ones((3, 4), dtype=bool))


# --- multi-head attention against Keras ------------------------------------------------------

def keras_mha(num_heads, key_dim, value_dim, depth, length_q, length_v):
    layer = keras.layers.MultiHeadAttention(num_heads, key_dim, value_dim=value_dim,
                                            dtype="float64")
    layer.build((None, length_q, depth), (None, length_v, depth))
    return layer


MHA_CASES = [(1, 4, 4, 8, 5, 5), (2, 3, 5, 6, 4, 7), (4, 8, 8, 16, 6, 6), (3, 2, 1, 5, 1, 3)]


@pytest.mark.parametrize("heads, key_dim, value_dim, depth, t, s", MHA_CASES)
def test_multi_head_attention_matches_keras(heads, key_dim, value_dim, depth, t, s):
    rng = np.random.default_rng(heads * 10 + t)
    layer = keras_mha(heads, key_dim, value_dim, depth, t, s)
    query, value = rng.normal(size=(2, t, depth)), rng.normal(size=(2, s, depth))
    key = rng.normal(size=(2, s, depth))
    mask = rng.random((2, t, s)) < 0.7
    mask[..., 0] = True
    expected, expected_weights = layer(query, value, key=key, attention_mask=mask,
                                       return_attention_scores=True)
    ours, weights = multi_head_attention(query, value, layer.get_weights(), key=key, mask=mask)
    assert ours.shape == (2, t, depth) and weights.shape == (2, heads, t, s)
    # Keras rounds the scale 1/sqrt(key_dim) to float32 before casting it to float64 (exact for
    # key_dim 1, 4, 16), hence ~1e-8 rather than ~1e-15 for the others.
    tolerance = 1e-12 if key_dim in (1, 4, 16) else 1e-7
    np.testing.assert_allclose(ours, np.asarray(expected), atol=tolerance)
    np.testing.assert_allclose(weights, np.asarray(expected_weights), atol=tolerance)


def test_multi_head_attention_causal_and_padding_masks_match_keras():
    rng = np.random.default_rng(5)
    layer = keras_mha(2, 4, 4, 8, 6, 6)
    x = rng.normal(size=(2, 6, 8))
    np.testing.assert_allclose(multi_head_attention(x, x, layer.get_weights(),
                                                    mask=causal_mask(6))[0],
                               np.asarray(layer(x, x, use_causal_mask=True)), atol=1e-10)
    ids = np.array([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    np.testing.assert_allclose(multi_head_attention(x, x, layer.get_weights(),
                                                    mask=padding_mask(ids))[0],
                               np.asarray(layer(x, x, attention_mask=padding_mask(ids))),
                               atol=1e-10)


def test_multi_head_attention_argument_errors():
    layer = keras_mha(2, 4, 4, 8, 3, 3)
    x = np.ones((1, 3, 8))
    with pytest.raises(ValueError, match="8 arrays"):
        multi_head_attention(x, x, layer.get_weights()[:6])
    with pytest.raises(ValueError, match=r"query must be \(batch, length, 8\)"):
        multi_head_attention(np.ones((1, 3, 7)), x, layer.get_weights())


# --- masks and positions ---------------------------------------------------------------------

def test_causal_and_padding_masks():
    np.testing.assert_array_equal(causal_mask(3), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    mask = padding_mask(np.array([[5, 2, 0], [1, 0, 0]]))
    assert mask.shape == (2, 1, 3) and mask.dtype == bool
    np.testing.assert_array_equal(mask[:, 0], [[1, 1, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="length must be an int"):
        causal_mask(0)
    with pytest.raises(ValueError, match="2-D integer"):
        padding_mask(np.ones((2, 3)))


def test_sinusoidal_encoding_formula_and_offset_rotation():
    pe = sinusoidal_encoding(50, 6, base=100.0)
    assert pe.shape == (50, 6)
    np.testing.assert_array_equal(pe[0], [0, 1, 0, 1, 0, 1])
    omega = 100.0 ** (-np.array([0, 2, 4]) / 6)
    np.testing.assert_allclose(pe[7, 0::2], np.sin(7 * omega))
    np.testing.assert_allclose(pe[7, 1::2], np.cos(7 * omega))
    for k in (1, 5, 13):  # PE(p + k) = R_k PE(p), R_k block-diagonal, the same for every p
        rotation = np.zeros((6, 6))
        for i, w in enumerate(omega):
            rotation[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[np.cos(k * w), np.sin(k * w)],
                                                        [-np.sin(k * w), np.cos(k * w)]]
        np.testing.assert_allclose(pe[k:], pe[:50 - k] @ rotation.T, atol=1e-12)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(4, 5)
    with pytest.raises(ValueError, match="base"):
        sinusoidal_encoding(4, 4, base=1)


def test_positional_encoding_layer_adds_the_table():
    layer = PositionalEncoding(10)
    x = np.random.default_rng(2).normal(size=(2, 7, 4)).astype("float32")
    out = np.asarray(layer(x))
    np.testing.assert_allclose(out - x, np.broadcast_to(sinusoidal_encoding(10, 4)[:7], x.shape),
                               atol=1e-6)
    assert layer.count_params() == 0
    assert PositionalEncoding.from_config(layer.get_config()).max_length == 10
    with pytest.raises(ValueError, match="exceed max_length"):
        PositionalEncoding(5)(keras.Input(shape=(6, 4)))


# --- the block -------------------------------------------------------------------------------

def block_model(depth=8, heads=2, key_dim=4, ff_dim=16, causal=False, cross=False):
    x = keras.Input(shape=(None, depth))
    context = keras.Input(shape=(None, depth)) if cross else None
    out = transformer_block(x, heads, key_dim, ff_dim, causal=causal, context=context, name="b")
    return keras.Model([x, context] if cross else x, out)


@pytest.mark.parametrize("depth, heads, key_dim, ff_dim, cross",
                         [(8, 2, 4, 16, False), (12, 3, 5, 20, True), (16, 1, 16, 64, False)])
def test_transformer_block_parameter_count(depth, heads, key_dim, ff_dim, cross):
    attention = 3 * (depth * heads * key_dim + heads * key_dim) + heads * key_dim * depth + depth
    feed_forward = 2 * depth * ff_dim + ff_dim + depth
    norms = 2 * depth * (3 if cross else 2)
    expected = attention * (2 if cross else 1) + feed_forward + norms
    assert block_model(depth, heads, key_dim, ff_dim, cross=cross).count_params() == expected


def test_transformer_block_is_an_identity_when_its_sublayers_output_zero():
    model = block_model(cross=True)
    for layer in model.layers:
        if layer.name.endswith(("attention", "feed_forward_2")):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    rng = np.random.default_rng(3)
    x, context = rng.normal(size=(2, 5, 8)), rng.normal(size=(2, 3, 8))
    # pre-LN: the residual path carries x through untouched
    np.testing.assert_allclose(np.asarray(model([x, context])), x, atol=1e-6)
    names = [layer.name for layer in model.layers]
    assert {"b_self_attention", "b_cross_attention", "b_norm_attention",
            "b_feed_forward_1", "b_residual_feed_forward"} <= set(names)


def test_causal_block_later_tokens_do_not_change_earlier_outputs_bitwise():
    model = block_model(causal=True)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 9, 8)).astype("float32")
    changed = x.copy()
    changed[:, 5:] = rng.normal(size=(3, 4, 8))
    before, after = np.asarray(model(x)), np.asarray(model(changed))
    assert np.array_equal(before[:, :5], after[:, :5])
    assert not np.allclose(before[:, 5:], after[:, 5:])


def test_block_without_positions_is_permutation_equivariant():
    model = block_model()
    x = np.random.default_rng(5).normal(size=(1, 7, 8)).astype("float32")
    order = np.random.default_rng(6).permutation(7)
    np.testing.assert_allclose(np.asarray(model(x[:, order])), np.asarray(model(x))[:, order],
                               atol=1e-5)


def test_dropout_is_active_in_training_only_and_seeded():
    def build():
        keras.utils.set_random_seed(7)
        return build_text_transformer(30, 6, dim=8, num_heads=2, ff_dim=16, dropout=0.5, seed=3)

    model = build()
    ids = np.array([[4, 5, 6, 7, 0, 0]] * 2)
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropouts) == 2 and len({layer.seed for layer in dropouts}) == 2
    np.testing.assert_array_equal(np.asarray(model(ids)), np.asarray(model(ids)))
    trained = np.asarray(model(ids, training=True))
    assert not np.allclose(trained, np.asarray(model(ids)))
    np.testing.assert_array_equal(trained, np.asarray(build()(ids, training=True)))


def test_transformer_block_argument_errors():
    x = keras.Input(shape=(4, 8))
    with pytest.raises(ValueError, match="dropout"):
        transformer_block(x, 2, 4, 16, dropout=1.0)
    with pytest.raises(ValueError, match="without a context"):
        transformer_block(x, 2, 4, 16, context_mask=x)
    with pytest.raises(ValueError, match="num_heads"):
        transformer_block(x, 0, 4, 16)
    with pytest.raises(ValueError, match=r"\(batch, length, depth\)"):
        transformer_block(keras.Input(shape=(8,)), 2, 4, 16)


# --- models ----------------------------------------------------------------------------------

def test_bag_of_embeddings_ignores_padding_and_order():
    model = build_bag_of_embeddings(50, 6, dim=4)
    assert model.count_params() == 50 * 4 + 4 + 1
    ids = np.array([[3, 7, 9, 0, 0, 0]])
    embedding = model.get_layer("embedding").get_weights()[0]
    dense = model.get_layer("logit").get_weights()
    expected = embedding[[3, 7, 9]].mean(axis=0) @ dense[0] + dense[1]
    np.testing.assert_allclose(np.asarray(model(ids))[0], expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(np.array([[9, 3, 7, 0, 0, 0]]))),
                               np.asarray(model(ids)), atol=1e-6)


def test_text_transformer_positions_make_it_order_sensitive():
    ids = np.array([[5, 8, 13, 21, 34, 0, 0, 0]])
    shuffled = np.array([[34, 13, 5, 21, 8, 0, 0, 0]])
    for positions, sensitive in ((False, False), (True, True)):
        keras.utils.set_random_seed(0)
        model = build_text_transformer(40, 8, dim=16, num_heads=2, ff_dim=32, positions=positions)
        gap = np.abs(np.asarray(model(ids)) - np.asarray(model(shuffled))).max()
        assert (gap > 1e-3) == sensitive, (positions, gap)
    assert model.output.shape == (None, 1)


def test_text_transformer_gives_padding_no_attention():
    keras.utils.set_random_seed(1)
    model = build_text_transformer(40, 6, dim=8, num_heads=2, ff_dim=16)
    weights = attention_maps(model, np.array([[4, 5, 6, 0, 0, 0]]))["encoder_1_self_attention"]
    assert weights.shape == (1, 2, 6, 6)
    np.testing.assert_array_equal(weights[0, :, :3, 3:], 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)


def test_char_gpt_is_causal_bitwise_and_gru_shapes():
    keras.utils.set_random_seed(2)
    gpt = build_char_gpt(20, 12, dim=16, num_heads=2, ff_dim=32, blocks=2)
    gru = build_char_gru(20, 12, units=8, dim=4)
    ids = np.random.default_rng(7).integers(1, 20, size=(4, 12))
    changed = ids.copy()
    changed[:, 7:] = (changed[:, 7:] + 3) % 20
    before, after = np.asarray(gpt(ids)), np.asarray(gpt(changed))
    assert before.shape == (4, 12, 20)
    assert np.array_equal(before[:, :7], after[:, :7])
    assert not np.allclose(before[:, 7:], after[:, 7:])
    assert gru.output.shape == (None, 12, 20)
    assert gru.count_params() == 20 * 4 + 3 * (4 * 8 + 8 * 8 + 2 * 8) + 8 * 20 + 20


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        build_char_gpt(20, 8, dim=10, num_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        build_bag_of_embeddings(1, 5)
    with pytest.raises(ValueError, match="encoder_blocks"):
        build_seq2seq_transformer(5, 5, 4, 4, encoder_blocks=0)


def small_seq2seq(positions=True):
    keras.utils.set_random_seed(3)
    return build_seq2seq_transformer(8, 9, 5, 6, dim=16, num_heads=2, ff_dim=32,
                                     positions=positions)


def test_seq2seq_without_positions_reads_its_source_as_a_set():
    source = np.array([[1, 2, 3, 4, 0]])
    anagram = np.array([[3, 1, 4, 2, 0]])
    target_in = np.array([[1, 5, 6, 7, 0, 0]])
    for positions in (False, True):
        model = small_seq2seq(positions)
        gap = np.abs(np.asarray(model([source, target_in]))
                     - np.asarray(model([anagram, target_in]))).max()
        assert (gap <= 1e-5) == (not positions), (positions, gap)
    assert model.output.shape == (None, 6, 9)


def test_greedy_decoder_matches_a_step_by_step_reference():
    model = small_seq2seq()
    source = np.random.default_rng(8).integers(1, 8, size=(5, 5)).astype("int32")
    decoded = np.asarray(make_greedy_decoder(model, start_id=1, end_id=2)(source))
    assert decoded.shape == (5, 6)
    decoder_input = np.zeros((5, 6), dtype="int32")
    decoder_input[:, 0] = 1
    expected = np.zeros((5, 6), dtype="int32")
    finished = np.zeros(5, dtype=bool)
    for t in range(6):
        token = np.asarray(model([source, decoder_input])).argmax(axis=-1)[:, t]
        token = np.where(finished, 0, token)
        finished |= token == 2
        expected[:, t] = token
        if t + 1 < 6:
            decoder_input[:, t + 1] = token
    np.testing.assert_array_equal(decoded, expected)


def test_sampler_is_seeded_keeps_the_prompt_and_is_greedy_when_cold():
    keras.utils.set_random_seed(4)
    model = build_char_gpt(12, 8, dim=16, num_heads=2, ff_dim=32, blocks=1)
    sample = make_sampler(model)
    prompt = np.array([[3, 4, 5], [6, 7, 8]])
    first, again = sample(prompt, 10, 1.0, seed=1), sample(prompt, 10, 1.0, seed=1)
    assert first.shape == (2, 13)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[:, :3], prompt)
    assert not np.array_equal(first, sample(prompt, 10, 1.0, seed=2))
    cold = sample(prompt, 7, 1e-4, seed=1)  # length 10 > window 8: the window slides
    text = prompt.copy()
    for _ in range(7):
        window = text[:, -8:] if text.shape[1] >= 8 else np.pad(text, ((0, 0), (0, 8 - text.shape[1])))
        position = min(text.shape[1], 8) - 1
        text = np.concatenate([text, np.asarray(model(window)).argmax(-1)[:, position:position + 1]],
                              axis=1)
    np.testing.assert_array_equal(cold, text)
    with pytest.raises(ValueError, match="seed"):
        sample(prompt, 3)
    with pytest.raises(ValueError, match="temperature"):
        sample(prompt, 3, 0.0, seed=1)


# --- data, scoring and training --------------------------------------------------------------

def test_prepare_g2p_filters_strips_stress_and_encodes():
    dictionary = pd.DataFrame({
        "word": ["cat", "stop", "post", "o'neil", "zebras", "abcdefghijk"],
        "phonemes": ["K AE1 T", "S T AA1 P", "P OW1 S T", "OW0 N IY1 L", "Z IY1 B R AH0 Z", "EY1"]})
    data = prepare_g2p(dictionary, min_letters=4, max_letters=10)
    assert list(data.words) == ["stop", "post", "zebras"]
    assert list(data.pronunciations) == ["S T AA P", "P OW S T", "Z IY B R AH Z"]
    assert data.source.shape == (3, 10) and data.target.shape == (3, 7)
    assert data.spell(data.source[2]) == "zebras"
    assert data.pronounce(data.target[2]) == "Z IY B R AH Z"
    assert data.decoder_input[0, 0] == data.START and data.target[0, 4] == data.END
    np.testing.assert_array_equal(data.decoder_input[:, 1:5], data.target[:, :4])
    assert data.phonemes[:3] == ("", "<start>", "<end>") and data.letters[1] == "a"
    with pytest.raises(ValueError, match="no word"):
        prepare_g2p(dictionary, min_letters=12, max_letters=14)
    with pytest.raises(ValueError, match="columns"):
        prepare_g2p(dictionary.rename(columns={"word": "spelling"}))


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["A", "B"]) == 2
    assert edit_distance("S T AA P".split(), "S T AA P".split()) == 0
    assert edit_distance("abc", "cab") == 2


def test_ngram_bits_per_char():
    train = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 3])
    counts = np.bincount(train, minlength=4)
    probability = (counts + 0.5) / (len(train) + 0.5 * 4)
    evaluation = np.array([0, 1, 2, 3, 0])
    expected = -np.log2(probability[evaluation]).mean()
    np.testing.assert_allclose(ngram_bits_per_char(train, evaluation, 4, 1, alpha=0.5), expected)
    cycle = np.tile([0, 1, 2], 200)
    assert ngram_bits_per_char(cycle, cycle, 3, 2, alpha=0.01) < 0.01  # fully predictable
    with pytest.raises(ValueError, match="too big"):
        ngram_bits_per_char(train, train, 100, 4)
    with pytest.raises(ValueError, match=r"ids in \[0, 3\)"):
        ngram_bits_per_char(train, train, 3, 1)


def test_train_steps_learns_and_is_reproducible():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(256, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype("float32")

    def run():
        keras.utils.set_random_seed(5)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        log = train_steps(model, x, y, keras.losses.MeanSquaredError(), steps=60, batch_size=32,
                          learning_rate=0.05, seed=11)
        return model, log

    (model, log), (model_again, _) = run(), run()
    assert log.steps == 60 and log.losses[-5:].mean() < 0.05 * log.losses[:5].mean()
    assert log.step_seconds > 0 and log.cpu_seconds > 0
    for a, b in zip(model.get_weights(), model_again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_steps_with_two_inputs_and_argument_errors():
    keras.utils.set_random_seed(6)
    model = small_seq2seq()
    source = np.ones((40, 5), dtype="int32")
    target_in, target = np.ones((40, 6), dtype="int32"), np.full((40, 6), 3, dtype="int32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    log = train_steps(model, [source, target_in], target, loss, steps=12, batch_size=16,
                      learning_rate=1e-2, seed=0)  # 2 batches a pass: it reshuffles
    assert log.losses[-1] < log.losses[0]
    with pytest.raises(ValueError, match="same number of examples"):
        train_steps(model, [source[:30], target_in], target, loss, steps=1, batch_size=8,
                    learning_rate=1e-3, seed=0)
    with pytest.raises(ValueError, match="larger than"):
        train_steps(model, [source, target_in], target, loss, steps=1, batch_size=64,
                    learning_rate=1e-3, seed=0)
    with pytest.raises(ValueError, match="learning_rate"):
        train_steps(model, [source, target_in], target, loss, steps=1, batch_size=8,
                    learning_rate=0, seed=0)


def test_attention_maps_of_every_layer_and_errors():
    model = small_seq2seq()
    maps = attention_maps(model, [np.array([[1, 2, 3, 0, 0]]), np.array([[1, 4, 0, 0, 0, 0]])])
    assert set(maps) == {"encoder_1_self_attention", "decoder_1_self_attention",
                         "decoder_1_cross_attention"}
    cross = maps["decoder_1_cross_attention"]
    assert cross.shape == (1, 2, 6, 5)
    np.testing.assert_array_equal(cross[..., 3:], 0.0)  # padded letters get no weight
    np.testing.assert_array_equal(np.triu(maps["decoder_1_self_attention"][0, 0], 1), 0.0)
    with pytest.raises(ValueError, match="no MultiHeadAttention"):
        attention_maps(build_char_gru(5, 4, units=2, dim=2), np.ones((1, 4)))


def test_plot_attention_labels_and_errors():
    figure = plot_attention(np.full((2, 3), 1 / 3), ["q1", "q2"], ["a", "b", "c"], title="T")
    ax = figure.axes[0]
    assert ax.get_title() == "T" and ax.get_xlabel() == "key" and ax.get_ylabel() == "query"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="one"):
        plot_attention(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="key_labels has 2 labels for 3"):
        plot_attention(np.ones((2, 3)), key_labels=["a", "b"])
    matplotlib.pyplot.close("all")


def test_models_run_inside_tf_function_with_keras_ops_masks():
    model = small_seq2seq()
    call = tf.function(lambda s, t: model([s, t]))
    out = call(tf.ones((2, 5), tf.int32), tf.ones((2, 6), tf.int32))
    assert out.shape == (2, 6, 9)
