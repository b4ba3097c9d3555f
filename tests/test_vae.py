"""Tests of dlbook.vae: the closed-form Gaussian KL against numerical integration and Monte Carlo,
both gradient estimators unbiased with their exact variances, the VAE's loss terms against the
formulas (binary cross-entropy on logits summed over pixels, KL of the encoder's Gaussian),
seeded and reproducible training and sampling, interpolation, and argument errors."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dlbook import vae as V  # noqa: E402
from dlbook.autoencoders import build_coder, shuffled_batches  # noqa: E402
from dlbook.data import load_digits  # noqa: E402

# --- the maths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mean, log_var", [(0.0, 0.0), (1.5, 0.0), (-0.7, np.log(0.2)),
                                           (2.0, np.log(4.0))])
def test_gaussian_kl_matches_numerical_integration(mean, log_var):
    std = np.exp(0.5 * log_var)
    q = norm(mean, std)
    integrand = lambda z: q.pdf(z) * (q.logpdf(z) - norm.logpdf(z))  # noqa: E731
    reference, _ = integrate.quad(integrand, mean - 12 * std, mean + 12 * std)
    assert float(V.gaussian_kl(mean, log_var)) == pytest.approx(reference, abs=1e-7)


def test_gaussian_kl_is_zero_only_at_the_prior_and_elementwise():
    assert float(V.gaussian_kl(0.0, 0.0)) == 0.0
    values = V.gaussian_kl(np.array([[0.0, 1.0], [0.5, 0.0]]), np.array([[0.3, 0.0], [0.0, -1.0]]))
    assert values.shape == (2, 2) and np.all(values[[0, 1, 1], [0, 0, 1]] > 0)
    with pytest.raises(ValueError, match="same shape"):
        V.gaussian_kl(np.zeros(3), np.zeros(2))


def test_monte_carlo_kl_agrees_and_reports_its_standard_error():
    estimate, error = V.monte_carlo_kl(1.0, np.log(0.5), 200_000, seed=0)
    exact = float(V.gaussian_kl(1.0, np.log(0.5)))
    assert abs(estimate - exact) < 4 * error and 0 < error < 0.01
    same = [V.monte_carlo_kl(1.0, np.log(0.5), 1000, seed=3) for _ in range(2)]
    assert same[0] == same[1]
    with pytest.raises(ValueError, match="n must be"):
        V.monte_carlo_kl(0.0, 0.0, 1, seed=0)


def test_both_gradient_estimators_are_unbiased_with_their_exact_variances():
    # f(z) = (z - 3)^2 at mean 1, std 0.5: gradient 2 (mean - 3) = -4; reparameterised estimate
    # eps - 4 (variance 1); score-function estimate 0.5 eps^3 - 4 eps^2 + 8 eps (variance 123.75).
    n = 400_000
    reparameterised = V.reparameterised_gradients(lambda z: 2 * (z - 3), 1.0, 0.5, n, seed=1)
    score = V.score_function_gradients(lambda z: (z - 3) ** 2, 1.0, 0.5, n, seed=1)
    assert reparameterised.shape == score.shape == (n,)
    for estimates, variance in [(reparameterised, 1.0), (score, 123.75)]:
        assert abs(estimates.mean() + 4) < 4 * np.sqrt(variance / n)
        assert estimates.var() == pytest.approx(variance, rel=0.05)
    eps = np.random.default_rng(1).standard_normal(n)
    np.testing.assert_allclose(score, 0.5 * eps**3 - 4 * eps**2 + 8 * eps, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="std must be"):
        V.score_function_gradients(np.square, 0.0, 0.0, 10, seed=0)


# --- the model ---------------------------------------------------------------------------------

def make_vae(latent=2, beta=1.0, seed=0, pixels=64):
    encoder = build_coder(pixels, 2 * latent, (16,), seed=seed, name="encoder")
    decoder = build_coder(latent, pixels, (16,), seed=seed + 1, name="decoder")
    model = V.VAE(encoder, decoder, latent, beta=beta, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    return model


@pytest.fixture(scope="module")
def digits():
    images, _ = load_digits()
    return images.reshape(len(images), -1)[:512]


def test_loss_terms_match_the_formulas(digits):
    model = make_vae()
    x = tf.constant(digits[:32])
    reconstruction, kl = (np.asarray(t, dtype=np.float64) for t in model.losses_of(x, training=False))
    mean, log_var = (np.asarray(t, dtype=np.float64) for t in model.posterior(x))
    np.testing.assert_allclose(kl, V.gaussian_kl(mean, log_var).sum(axis=1), rtol=1e-5)
    # Reconstruction: re-draw the same noise with a fresh generator of the same seed.
    twin = make_vae()
    eps = np.asarray(keras.random.normal(mean.shape, seed=keras.random.SeedGenerator(0)))
    logits = np.asarray(twin.decoder(mean + np.exp(0.5 * log_var) * eps), dtype=np.float64)
    p = 1 / (1 + np.exp(-logits))
    bce = -(digits[:32] * np.log(p) + (1 - digits[:32]) * np.log(1 - p)).sum(axis=1)
    np.testing.assert_allclose(reconstruction, bce, rtol=1e-4)


def test_training_lowers_the_loss_and_logs_both_terms(digits):
    model = make_vae(beta=1.0)
    history = model.fit(shuffled_batches(digits, 64, seed=0), epochs=15, verbose=0)
    curves = history.history
    assert set(curves) >= {"loss", "reconstruction", "kl"}
    assert curves["loss"][-1] < 0.8 * curves["loss"][0]
    np.testing.assert_allclose(np.add(curves["reconstruction"], curves["kl"]), curves["loss"],
                               rtol=1e-4)
    weighted = make_vae(beta=4.0)
    logs = weighted.fit(shuffled_batches(digits, 64, seed=0), epochs=1, verbose=0).history
    assert logs["loss"][0] == pytest.approx(logs["reconstruction"][0] + 4 * logs["kl"][0], rel=1e-4)


def test_training_and_sampling_are_reproducible(digits):
    runs = []
    for _ in range(2):
        model = make_vae(seed=3)
        model.fit(shuffled_batches(digits, 64, seed=1), epochs=2, verbose=0)
        runs.append((model.get_weights(), model.generate(5), model.generate(5)))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[0][2])  # each call draws new codes
    assert runs[0][1].shape == (5, 64) and runs[0][1].min() >= 0 and runs[0][1].max() <= 1


def test_generate_is_the_decoder_on_prior_noise(digits):
    model = make_vae(seed=4)
    samples = model.generate(7)
    codes = np.asarray(keras.random.normal((7, 2), seed=keras.random.SeedGenerator(5)))
    np.testing.assert_allclose(samples, model.decode(codes), rtol=1e-5, atol=1e-6)
    assert model.encode(digits[:3]).shape == (3, 2)
    np.testing.assert_allclose(np.asarray(model(digits[:3])),
                               model.decode(model.encode(digits[:3])), rtol=1e-5, atol=1e-6)


def test_vae_argument_errors():
    encoder, decoder = build_coder(64, 4, seed=0), build_coder(2, 64, seed=0)
    with pytest.raises(ValueError, match="2 \\* latent_dim = 6"):
        V.VAE(encoder, build_coder(3, 64), latent_dim=3)
    with pytest.raises(ValueError, match="codes of latent_dim = 2"):
        V.VAE(encoder, build_coder(3, 64), latent_dim=2)
    with pytest.raises(ValueError, match="beta must be"):
        V.VAE(encoder, decoder, latent_dim=2, beta=-1)
    with pytest.raises(ValueError, match=r"z must be \(n, 2\)"):
        V.VAE(encoder, decoder, latent_dim=2).decode(np.zeros((3, 3)))


def test_sample_snapshots_keep_the_chosen_epochs(digits):
    model = make_vae()
    codes = np.zeros((4, 2), np.float32)
    snapshots = V.SampleSnapshots(codes, epochs=(1, 3))
    model.fit(shuffled_batches(digits, 128, seed=0), epochs=3, verbose=0, callbacks=[snapshots])
    assert sorted(snapshots.snapshots) == [1, 3]
    np.testing.assert_allclose(snapshots.snapshots[3], model.decode(codes), rtol=1e-6)
    assert not np.allclose(snapshots.snapshots[1], snapshots.snapshots[3])
    with pytest.raises(ValueError, match="epoch must be"):
        V.SampleSnapshots(codes, epochs=(0,))


def test_interpolation_and_cross_fade():
    a, b = np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32)
    path = V.interpolate(a, b, 5)
    assert path.shape == (5, 3, 2)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(path[2], 0.5)
    np.testing.assert_array_equal(V.cross_fade(a, b, 5), path)
    with pytest.raises(ValueError, match="same shape"):
        V.interpolate(a, b[:2], 3)
    with pytest.raises(ValueError, match="steps must be"):
        V.interpolate(a, b, 1)


def test_code_gradient_estimates_match_finite_differences_and_each_other(digits):
    model = make_vae(seed=6)
    model.fit(shuffled_batches(digits, 64, seed=0), epochs=3, verbose=0)
    x = digits[:4]
    slopes, scores = V.code_gradient_estimates(model, x, 4000, seed=2)
    assert slopes.shape == scores.shape == (4000, 4, 2)
    # Each reparameterised estimate is the decoder's slope at its draw: check one by differences.
    mean, log_var = (np.asarray(a, np.float64) for a in model.posterior(tf.constant(x)))
    eps = np.random.default_rng(2).standard_normal((4000, 4, 2))
    z = mean + np.exp(0.5 * log_var) * eps
    nll = lambda codes: np.asarray(  # noqa: E731
        V.bernoulli_nll(model.decoder(codes.astype(np.float32)), x), dtype=np.float64)
    step = np.array([[1e-2, 0.0]])
    difference = (nll(z[0] + step) - nll(z[0] - step)) / 2e-2
    np.testing.assert_allclose(slopes[0, :, 0], difference, rtol=2e-2, atol=2e-2)
    # Score function: the value times eps / std; and both estimate the same gradient.
    np.testing.assert_allclose(scores[0], nll(z[0])[:, None] * eps[0] / np.exp(0.5 * log_var),
                               rtol=1e-4)
    error = np.sqrt((slopes.var(0) + scores.var(0)) / 4000)
    assert np.all(np.abs(slopes.mean(0) - scores.mean(0)) < 4.5 * error)
    assert slopes.var(0).mean() < 0.05 * scores.var(0).mean()
    again, _ = V.code_gradient_estimates(model, x, 4000, seed=2)
    np.testing.assert_array_equal(again, slopes)
    with pytest.raises(ValueError, match="draws must be"):
        V.code_gradient_estimates(model, x, 1, seed=0)
    with pytest.raises(ValueError, match="must be a dlbook.vae.VAE"):
        V.code_gradient_estimates(model.decoder, x, 10, seed=0)
