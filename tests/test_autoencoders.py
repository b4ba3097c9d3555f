"""Tests of dlbook.autoencoders: the coder builder (shapes, parameter counts, a linear coder is
x W + b), the Autoencoder's training step (its loss equals the formula, noise is seeded, a linear
autoencoder finds PCA's subspace), the ten-in-one LeaveOneClassOut model against a NumPy forward
pass and its masking, the yardsticks against SciPy and scikit-learn, and argument errors."""

import numpy as np
import pytest
import scipy.linalg
from scipy.ndimage import gaussian_filter
from sklearn.decomposition import PCA

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dlbook import autoencoders as ae  # noqa: E402


def low_rank_data(n=600, d=6, seed=0):
    """Points near a 2-D plane in R^d, with a little isotropic noise."""
    rng = np.random.default_rng(seed)
    plane = np.linalg.qr(rng.normal(size=(d, 2)))[0].T  # (2, d) orthonormal
    x = 0.5 + rng.normal(size=(n, 2)) @ (plane * [[0.3], [0.2]]) + 0.03 * rng.normal(size=(n, d))
    return x.astype(np.float32), plane


# --- build_coder and Autoencoder ---------------------------------------------------------------

def test_build_coder_shapes_names_and_parameter_count():
    coder = ae.build_coder(784, 2, (256, 64), seed=0, name="encoder")
    assert coder.output_shape == (None, 2)
    assert [layer.name for layer in coder.layers[1:]] == ["encoder_1", "encoder_2", "encoder_out"]
    assert coder.count_params() == (784 * 256 + 256) + (256 * 64 + 64) + (64 * 2 + 2)
    sigmoid = ae.build_coder(2, 784, (64,), output_activation="sigmoid", seed=0)
    out = np.asarray(sigmoid(np.random.default_rng(0).normal(size=(5, 2)) * 10))
    assert out.min() >= 0 and out.max() <= 1


def test_a_coder_without_hidden_layers_is_one_affine_map():
    coder = ae.build_coder(5, 3, seed=1)
    layer = coder.get_layer("coder_out")
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    expected = x @ layer.kernel.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(np.asarray(coder(x)), expected, rtol=1e-5, atol=1e-6)


def test_build_coder_is_reproducible_and_checks_arguments():
    first, second = ae.build_coder(8, 2, (4,), seed=3), ae.build_coder(8, 2, (4,), seed=3)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="hidden must be"):
        ae.build_coder(8, 2, (4, 0))
    with pytest.raises(ValueError, match="input_dim must be"):
        ae.build_coder(0, 2)
    with pytest.raises(ValueError, match="seed must be"):
        ae.build_coder(8, 2, seed=-1)


def make_autoencoder(d=6, k=2, loss="mse", noise_std=0.0, seed=0, hidden=(), out=None):
    model = ae.Autoencoder(ae.build_coder(d, k, hidden, seed=seed, name="encoder"),
                           ae.build_coder(k, d, hidden, output_activation=out, seed=seed + 1,
                                          name="decoder"),
                           loss=loss, noise_std=noise_std, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_evaluate_reports_the_reconstruction_loss_formula(loss):
    x, _ = low_rank_data(64)
    model = make_autoencoder(loss=loss, out="sigmoid")
    reconstruction = np.asarray(model(x)).astype(np.float64)
    if loss == "mse":
        expected = np.mean((x - reconstruction) ** 2)
    else:
        p = np.clip(reconstruction, 1e-7, 1 - 1e-7)
        expected = -np.mean(x * np.log(p) + (1 - x) * np.log(1 - p))
    assert model.evaluate(x, batch_size=64, verbose=0) == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(ae.reconstruction_errors(model, x),
                               np.mean((x - reconstruction) ** 2, axis=1), rtol=1e-5)


def test_a_linear_autoencoder_finds_the_pca_subspace():
    x, plane = low_rank_data()
    model = make_autoencoder()
    history = model.fit(ae.shuffled_batches(x, 64, seed=0), epochs=150, verbose=0)
    assert history.history["loss"][-1] < 0.05 * history.history["loss"][0]
    pca = PCA(2).fit(x)
    decoder_rows = model.decoder.get_layer("decoder_out").kernel.numpy()
    assert ae.principal_angles(decoder_rows, pca.components_).max() < 3.0
    assert ae.principal_angles(decoder_rows, plane).max() < 5.0
    # The error PCA leaves is tiny (the noise); measure the excess against the data's variance.
    excess = ae.reconstruction_errors(model, x).mean() - np.mean((ae.pca_reconstruct(pca, x) - x) ** 2)
    assert excess <= 0.02 * x.var(axis=0).mean()


def test_denoising_noise_is_seeded_and_has_the_given_spread():
    x = np.zeros((20_000, 6), np.float32)
    model = make_autoencoder(noise_std=0.3, seed=5)
    noise = np.asarray(model.corrupt(tf.constant(x)))
    assert noise.std() == pytest.approx(0.3, rel=0.02) and abs(noise.mean()) < 0.01
    again = np.asarray(make_autoencoder(noise_std=0.3, seed=5).corrupt(tf.constant(x)))
    np.testing.assert_array_equal(noise, again)


def test_training_is_reproducible_with_a_seed():
    x, _ = low_rank_data(128)
    runs = []
    for _ in range(2):
        model = make_autoencoder(noise_std=0.1, seed=2, hidden=(8,))
        model.fit(ae.shuffled_batches(x, 32, seed=4), epochs=2, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_autoencoder_argument_errors():
    coder = ae.build_coder(4, 2)
    with pytest.raises(ValueError, match="loss must be one of"):
        ae.Autoencoder(coder, ae.build_coder(2, 4), loss="mae")
    with pytest.raises(ValueError, match="keras.Model"):
        ae.Autoencoder(lambda x: x, coder)
    with pytest.raises(ValueError, match="noise_std must be"):
        ae.Autoencoder(coder, ae.build_coder(2, 4), noise_std=-0.1)


def test_shuffled_batches_visit_every_example_once_per_epoch_in_a_seeded_order():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    epochs = [np.concatenate([b.numpy() for b in ae.shuffled_batches(x, 4, seed=1)])
              for _ in range(2)]
    assert [len(b) for b in ae.shuffled_batches(x, 4, seed=1)] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(epochs[0], axis=0), x)
    np.testing.assert_array_equal(epochs[0], epochs[1])  # a fresh dataset starts the same order
    other = np.concatenate([b.numpy() for b in ae.shuffled_batches(x, 4, seed=2)])
    assert not np.array_equal(epochs[0], other)
    with pytest.raises(ValueError, match="batch_size must be"):
        ae.shuffled_batches(x, 0, seed=0)


def test_step_timer_times_steps_after_the_first_epoch():
    x, _ = low_rank_data(64)
    timer = ae.StepTimer()
    with pytest.raises(ValueError, match="no step timed"):
        timer.seconds_per_step  # noqa: B018
    make_autoencoder().fit(ae.shuffled_batches(x, 16, seed=0), epochs=3, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 2 * 4 and timer.seconds_per_step > 0


# --- LeaveOneClassOut ----------------------------------------------------------------------------

def numpy_forward(model, x):
    kernels = [k.numpy() for k in model.kernels]
    biases = [b.numpy() for b in model.biases]
    h = np.einsum("bi,mio->mbo", x, kernels[0]) + biases[0]
    for kernel, bias in zip(kernels[1:], biases[1:], strict=True):
        h = np.einsum("mbi,mio->mbo", np.maximum(h, 0), kernel) + bias
    return 1 / (1 + np.exp(-h))


def test_leave_one_class_out_forward_matches_numpy_and_shapes():
    model = ae.LeaveOneClassOut(6, 2, (4,), num_classes=3, seed=0)
    x = np.random.default_rng(0).random((5, 6)).astype(np.float32)
    out = np.asarray(model(x))
    assert out.shape == (3, 5, 6)
    np.testing.assert_allclose(out, numpy_forward(model, x), rtol=1e-5, atol=1e-6)
    errors = model.errors(x, batch_size=2)
    np.testing.assert_allclose(errors, np.mean((out - x[None]) ** 2, axis=-1).T, rtol=1e-5)
    assert model.count_params() == 3 * ((6 * 4 + 4) + (4 * 2 + 2) + (2 * 4 + 4) + (4 * 6 + 6))
    # members start from different weights
    assert not np.allclose(model.kernels[0].numpy()[0], model.kernels[0].numpy()[1])


def test_a_member_never_learns_from_its_own_class():
    x = np.random.default_rng(1).random((32, 6)).astype(np.float32)
    y = np.zeros(32, dtype=np.int64)  # every example is class 0
    model = ae.LeaveOneClassOut(6, 2, (4,), num_classes=3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [k.numpy().copy() for k in model.kernels]
    model.fit(ae.labelled_batches(x, y, 16, seed=0), epochs=2, verbose=0)
    for old, new in zip(before, model.kernels, strict=True):
        np.testing.assert_array_equal(old[0], new.numpy()[0])  # member 0 saw nothing it may use
        assert not np.allclose(old[1], new.numpy()[1]) and not np.allclose(old[2], new.numpy()[2])


def test_leave_one_class_out_argument_errors():
    with pytest.raises(ValueError, match="num_classes must be"):
        ae.LeaveOneClassOut(6, 2, num_classes=1)
    with pytest.raises(ValueError, match="hidden must be"):
        ae.LeaveOneClassOut(6, 2, hidden=(0,))
    with pytest.raises(ValueError, match="x must have 6 features"):
        ae.LeaveOneClassOut(6, 2).errors(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="integer labels"):
        ae.labelled_batches(np.zeros((3, 2)), np.zeros(2, int), 2, seed=0)


# --- yardsticks ----------------------------------------------------------------------------------

def test_principal_angles_match_scipy_and_ignore_the_basis():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    np.testing.assert_allclose(ae.principal_angles(a, b),
                               np.sort(np.degrees(scipy.linalg.subspace_angles(a.T, b.T))),
                               atol=1e-8)
    mixed = rng.normal(size=(3, 3)) @ a  # another basis of the same subspace
    np.testing.assert_allclose(ae.principal_angles(a, mixed), 0.0, atol=1e-5)
    np.testing.assert_allclose(ae.principal_angles(np.eye(4)[:2], np.eye(4)[2:]), 90.0)
    with pytest.raises(ValueError, match="same d"):
        ae.principal_angles(np.eye(3), np.eye(4))


def test_pca_reconstruct_keeps_shape_and_matches_the_projection():
    x = np.random.default_rng(4).random((50, 4, 4)).astype(np.float32)
    pca = PCA(3).fit(x.reshape(50, -1))
    out = ae.pca_reconstruct(pca, x)
    assert out.shape == x.shape
    flat = x.reshape(50, -1)
    expected = (flat - pca.mean_) @ pca.components_.T @ pca.components_ + pca.mean_
    np.testing.assert_allclose(out.reshape(50, -1), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="fitted"):
        ae.pca_reconstruct(PCA(3), x)


def test_gaussian_blur_matches_scipy_per_image():
    images = np.random.default_rng(5).random((3, 9, 9)).astype(np.float32)
    blurred = ae.gaussian_blur(images, 1.0)
    for image, result in zip(images, blurred, strict=True):
        np.testing.assert_allclose(result, gaussian_filter(image, 1.0, mode="constant"), rtol=1e-5)
    np.testing.assert_array_equal(ae.gaussian_blur(images, 0), images)
    with pytest.raises(ValueError, match=r"\(n, h, w\)"):
        ae.gaussian_blur(images[0], 1.0)


def test_psnr_known_values():
    clean = np.zeros((4, 5))
    assert ae.psnr(clean, clean + 0.1) == pytest.approx(20.0)
    assert ae.psnr(clean, clean + 0.1, peak=2.0) == pytest.approx(20.0 + 20 * np.log10(2))
    assert ae.psnr(clean, clean) == float("inf")
    with pytest.raises(ValueError, match="same shape"):
        ae.psnr(clean, clean[:2])


def test_quantile_threshold_flags_the_requested_share_of_validation_scores():
    scores = np.random.default_rng(6).exponential(size=10_000)
    threshold = ae.quantile_threshold(scores, 0.05)
    assert np.mean(scores > threshold) == pytest.approx(0.05, abs=0.002)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ae.quantile_threshold(scores, 1.0)
    with pytest.raises(ValueError, match="at least 2 scores"):
        ae.quantile_threshold([1.0], 0.1)
