"""Tests of dlbook.diffusion: schedules (float32, the published formulas), the forward process's
closed form against the iterated chain, the time embedding against NumPy, the noise predictor's
shapes and parameter count, the training step (learns, reproducible), and the samplers: with the
exact noise predictor of a one-point data set, DDPM and DDIM must return that point; with the
exact noise predictor of Gaussian data (the Gaussian filter, whose error is checked against
theory), they must give the data's mean and spread; DDIM with eta = 1 on every step is DDPM; DDIM
is deterministic, DDPM is not; argument errors."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dlbook import diffusion as d  # noqa: E402

# --- schedules ----------------------------------------------------------------------------------


def test_linear_schedule_is_ho_et_al_rescaled_and_float32():
    s = d.NoiseSchedule.linear(1000)
    assert s.betas.dtype == s.alpha_bars.dtype == s.log_snr.dtype == s.alphas.dtype == np.float32
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    short = d.NoiseSchedule.linear(100)
    assert short.betas[0] == pytest.approx(1e-3) and short.betas[-1] == pytest.approx(0.2)
    assert short.steps == 100


def test_cosine_schedule_matches_the_closed_form_alpha_bar():
    T, s_ = 50, 0.008
    s = d.NoiseSchedule.cosine(T)
    f = np.cos((np.arange(T + 1) / T + s_) / (1 + s_) * np.pi / 2) ** 2
    np.testing.assert_allclose(s.alpha_bars[:-1], (f[1:] / f[0])[:-1], rtol=1e-5)
    assert s.betas.max() <= 0.999 and s.alpha_bars[-1] < 1e-4


def test_alpha_bars_and_log_snr_follow_from_the_betas():
    s = d.NoiseSchedule(np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(s.alpha_bars, [0.9, 0.72, 0.504], rtol=1e-6)
    np.testing.assert_allclose(s.log_snr, np.log(s.alpha_bars / (1 - s.alpha_bars)), rtol=1e-5)
    assert np.all(np.diff(d.NoiseSchedule.cosine(100).log_snr) < 0)


@pytest.mark.parametrize("betas", [[0.1], [0.0, 0.1], [0.5, 1.0], [[0.1, 0.2]]])
def test_bad_betas_are_refused(betas):
    with pytest.raises(ValueError, match="betas|beta"):
        d.NoiseSchedule(np.array(betas))


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="steps"):
        d.NoiseSchedule.linear(1)
    with pytest.raises(ValueError, match="offset"):
        d.NoiseSchedule.cosine(10, offset=0)


# --- the forward process ------------------------------------------------------------------------


def test_closed_form_and_chain_agree_in_mean_and_variance():
    s = d.NoiseSchedule.linear(50)
    x0 = np.full((20_000, 3), [0.5, -1.0, 0.0])
    for t in (1, 10, 50):
        abar = float(s.alpha_bars[t - 1])
        for draws in (d.noise_chain(x0, t, s, seed=1), d.noise_closed_form(x0, t, s, seed=2)):
            np.testing.assert_allclose(draws.mean(0), np.sqrt(abar) * x0[0], atol=0.03)
            np.testing.assert_allclose(draws.var(0), 1 - abar, rtol=0.05)


def test_forward_process_is_reproducible_and_checks_t():
    s = d.NoiseSchedule.cosine(10)
    np.testing.assert_array_equal(d.noise_chain(np.zeros(4), 5, s, 3), d.noise_chain(np.zeros(4), 5, s, 3))
    for bad in (0, 11):
        with pytest.raises(ValueError, match="t must be"):
            d.noise_closed_form(np.zeros(4), bad, s, 0)
        with pytest.raises(ValueError, match="t must be"):
            d.noise_chain(np.zeros(4), bad, s, 0)


# --- the network --------------------------------------------------------------------------------


def test_time_embedding_matches_numpy():
    layer = d.TimeEmbedding(8, max_period=100.0)
    t = np.array([0, 1, 7, 199], dtype=np.int32)
    out = np.asarray(layer(tf.constant(t)))
    freqs = 100.0 ** (-np.arange(4) / 4)
    expected = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=1)
    assert out.dtype == np.float32 and out.shape == (4, 8)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        d.TimeEmbedding(7)


def test_noise_predictor_shapes_and_parameter_count():
    net = d.build_noise_predictor(64, hidden=32, depth=2, embed_dim=16, seed=0)
    out = net([np.zeros((5, 64), np.float32), np.arange(5, dtype=np.int32)])
    assert out.shape == (5, 64)
    time_dense = 16 * 32 + 32
    hidden = (64 + 32) * 32 + 32 + (32 + 32) * 32 + 32
    assert net.count_params() == time_dense + hidden + 32 * 64 + 64
    conditional = d.build_noise_predictor(2, hidden=8, depth=1, embed_dim=4, num_classes=3, seed=0)
    assert len(conditional.inputs) == 3
    assert conditional.get_layer("label_embedding").input_dim == 4  # 3 classes + "no label"


def test_noise_predictor_is_reproducible_from_its_seed():
    a = d.build_noise_predictor(4, hidden=8, seed=5)
    b = d.build_noise_predictor(4, hidden=8, seed=5)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


# --- the model and its samplers ------------------------------------------------------------------


def make_model(data_dim=2, steps=20, seed=0, **kwargs):
    net = d.build_noise_predictor(data_dim, hidden=32, depth=2, embed_dim=16, seed=seed,
                                  num_classes=kwargs.get("num_classes"))
    return d.Diffusion(net, d.NoiseSchedule.cosine(steps), seed=seed + 1, **kwargs)


def oracle(model, point):
    """The exact noise predictor when every training example is ``point``."""
    point = tf.constant(point, tf.float32)

    def noise_fn(x, t, labels):
        abar = tf.expand_dims(tf.gather(model.alpha_bars, t), -1)
        return (x - tf.sqrt(abar) * point) / tf.sqrt(1.0 - abar)
    return noise_fn


def test_samplers_recover_a_single_data_point_with_the_exact_noise_predictor():
    model = make_model(data_dim=3, steps=50)
    point = np.array([0.3, -0.6, 0.9], np.float32)
    x_T = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    for samples in (model.ddpm(x_T=x_T, noise_fn=oracle(model, point)),
                    model.ddim(x_T, 50, noise_fn=oracle(model, point)),
                    model.ddim(x_T, 5, noise_fn=oracle(model, point))):
        np.testing.assert_allclose(samples, np.broadcast_to(point, (16, 3)), atol=1e-4)


GAUSS_MEAN, GAUSS_STD = np.array([0.2, -0.3]), np.array([0.3, 0.15])


def gaussian_data(n, seed):
    return (GAUSS_MEAN + GAUSS_STD * np.random.default_rng(seed).standard_normal((n, 2))).astype(
        np.float32)


def test_gaussian_noise_predictor_has_the_theoretical_error():
    schedule = d.NoiseSchedule.cosine(50)
    predictor = d.gaussian_noise_predictor(gaussian_data(50_000, 0), schedule)
    model = make_model(steps=50)
    x = gaussian_data(20_000, 1)
    for t in (0, 10, 25, 49):
        errors, zero = model.noise_errors(x, t, seed=t, noise_fn=predictor)
        a = float(schedule.alpha_bars[t])
        # per coordinate: Var(eps | x_t) = 1 - (1 - a) / (a s^2 + 1 - a)
        theory = np.mean(1 - (1 - a) / (a * GAUSS_STD**2 + 1 - a))
        np.testing.assert_allclose(errors.mean(), theory, rtol=0.03)
        assert errors.mean() < zero.mean()


def test_samplers_give_gaussian_data_its_spread():
    # T = 1000: with fewer steps, DDPM's variance beta-tilde (exact only for a deterministic x_0)
    # shrinks the spread of data narrower than the noise (T = 200: 5% for a standard deviation of
    # 0.15), and so does DDIM's discretisation; at T = 1000 both are within 2%
    schedule = d.NoiseSchedule.cosine(1000)
    predictor = d.gaussian_noise_predictor(gaussian_data(50_000, 0), schedule)
    x_T = np.random.default_rng(2).standard_normal((8_000, 2)).astype(np.float32)
    model = d.Diffusion(d.build_noise_predictor(2, hidden=4, depth=1, embed_dim=4, seed=0), schedule,
                        seed=1, clip=None)
    for samples in (model.ddpm(x_T=x_T, noise_fn=predictor),
                    model.ddim(x_T, 1000, noise_fn=predictor),
                    model.ddim(x_T, 1000, noise_fn=predictor, eta=0.5)):
        np.testing.assert_allclose(samples.mean(0), GAUSS_MEAN, atol=0.01)
        np.testing.assert_allclose(samples.std(0), GAUSS_STD, rtol=0.03)
    # what the test catches: no noise in DDPM's step (the posterior mean alone), or the variance
    # used as a standard deviation, collapses the spread; a wrong predictor shifts it
    wrong = model.ddpm(x_T=x_T, noise_fn=lambda x, t, labels: 0.9 * predictor(x, t))
    assert np.any(np.abs(wrong.std(0) / GAUSS_STD - 1) > 0.1)


def test_ddim_with_eta_one_on_every_step_is_ddpm():
    x_T = np.random.default_rng(3).standard_normal((16, 2)).astype(np.float32)
    ddpm = make_model(steps=20).ddpm(x_T=x_T)
    ddim = make_model(steps=20).ddim(x_T, 20, eta=1.0)  # same seeds: the same noise, drawn in order
    np.testing.assert_allclose(ddim, ddpm, atol=1e-5)
    model = make_model(steps=20)
    np.testing.assert_array_equal(model.ddim(x_T, 20, eta=np.zeros(20)), model.ddim(x_T, 20))
    assert not np.array_equal(model.ddim(x_T, 5, eta=1.0), model.ddim(x_T, 5, eta=1.0))


def test_noisy_is_the_closed_form():
    model = make_model(steps=10)
    x, eps, t = np.ones((3, 2), np.float32), np.full((3, 2), 0.5, np.float32), np.array([0, 4, 9])
    abar = model.schedule.alpha_bars[t][:, None]
    np.testing.assert_allclose(np.asarray(model.noisy(x, t, eps)),
                               np.sqrt(abar) * x + np.sqrt(1 - abar) * eps, rtol=1e-6)


def two_clusters(n=512, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-0.7, 0.5], [0.6, -0.4]], np.float32)
    labels = rng.integers(0, 2, n)
    return (centres[labels] + 0.05 * rng.standard_normal((n, 2))).astype(np.float32), labels


def test_training_learns_and_is_reproducible():
    x, _ = two_clusters()
    losses, weights = [], []
    for _ in range(2):
        keras.utils.set_random_seed(0)  # fixed seed: the test's own
        model = make_model(steps=20)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        history = model.fit(x, batch_size=128, epochs=40, shuffle=False, verbose=0)
        losses.append(history.history["loss"])
        weights.append(model.get_weights())
    assert losses[0][-1] < 0.6 * losses[0][0]
    assert losses[0] == losses[1]
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
    errors, zero = model.noise_errors(x[:100], 19, seed=3)
    assert errors.shape == zero.shape == (100,)
    assert errors.mean() < 0.5 * zero.mean()


def test_ddim_is_deterministic_and_ddpm_is_not():
    model = make_model(steps=20)
    x_T = np.random.default_rng(1).standard_normal((8, 2)).astype(np.float32)
    np.testing.assert_array_equal(model.ddim(x_T, 5), model.ddim(x_T, 5))
    assert not np.array_equal(model.ddpm(x_T=x_T), model.ddpm(x_T=x_T))
    path = model.ddpm(x_T=x_T, keep_path=True)
    assert path.shape == (21, 8, 2)
    np.testing.assert_array_equal(path[0], x_T)
    assert model.ddim(x_T, 4, keep_path=True).shape == (5, 8, 2)
    assert model.ddpm(7).shape == (7, 2)
    assert np.all(np.abs(model.ddim(x_T, 5)) <= 1.0 + 1e-6)  # x0 predictions clipped to [-1, 1]


def test_conditional_model_trains_and_samples_requested_labels():
    x, labels = two_clusters()
    keras.utils.set_random_seed(0)  # fixed seed: the test's own
    model = make_model(steps=20, num_classes=2, label_dropout=0.2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x, labels, batch_size=128, epochs=60, shuffle=False, verbose=0)
    x_T = np.random.default_rng(2).standard_normal((64, 2)).astype(np.float32)
    for label, centre in [(0, [-0.7, 0.5]), (1, [0.6, -0.4])]:
        samples = model.ddim(x_T, 10, labels=np.full(64, label))
        assert np.median(np.linalg.norm(samples - centre, axis=1)) < 0.3
    assert model.ddim(x_T, 10).shape == (64, 2)  # no labels: the unconditional noise


def test_sample_snapshots_keep_the_chosen_epochs():
    x, _ = two_clusters(128)
    model = make_model(steps=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x_T = np.zeros((4, 2), np.float32)
    snapshots = d.SampleSnapshots(x_T, epochs=(1, 3), steps=2)
    model.fit(x, batch_size=64, epochs=3, verbose=0, callbacks=[snapshots])
    assert sorted(snapshots.snapshots) == [1, 3]
    assert snapshots.snapshots[3].shape == (4, 2)


def test_to_pixels():
    images = d.to_pixels(np.array([[-1.0] * 64, [2.0] * 64]))
    assert images.shape == (2, 8, 8) and images.min() == 0.0 and images.max() == 1.0


def test_argument_errors():
    model = make_model(steps=10)
    with pytest.raises(ValueError, match="at most the schedule"):
        model.ddim(np.zeros((2, 2), np.float32), 11)
    with pytest.raises(ValueError, match="x_T must be"):
        model.ddim(np.zeros((2, 3), np.float32), 5)
    with pytest.raises(ValueError, match="unconditional"):
        model.ddpm(2, labels=[0, 1])
    with pytest.raises(ValueError, match="noise_fn"):
        model.ddim(np.zeros((2, 2), np.float32), 5, noise_fn="no")
    with pytest.raises(ValueError, match="0-based step"):
        model.noise_errors(np.zeros((2, 2)), 10, seed=0)
    with pytest.raises(ValueError, match="inputs"):
        d.Diffusion(d.build_noise_predictor(2, hidden=4, num_classes=2), d.NoiseSchedule.cosine(5), 0)
    with pytest.raises(ValueError, match="NoiseSchedule"):
        d.Diffusion(d.build_noise_predictor(2, hidden=4), np.ones(5) * 0.1, 0)
    with pytest.raises(ValueError, match="label_dropout"):
        make_model(num_classes=2, label_dropout=1.0)
    with pytest.raises(ValueError, match="clip"):
        make_model(clip=0)
    assert make_model(clip=None).clip is None
    with pytest.raises(ValueError, match="eta"):
        model.ddim(np.zeros((2, 2), np.float32), 5, eta=-0.1)
    with pytest.raises(ValueError, match="one per step"):
        model.ddim(np.zeros((2, 2), np.float32), 5, eta=np.ones(4))
    with pytest.raises(ValueError, match="NoiseSchedule"):
        d.gaussian_noise_predictor(np.zeros((5, 2)), "cosine")
    with pytest.raises(ValueError, match="data must be"):
        d.gaussian_noise_predictor(np.zeros(5), d.NoiseSchedule.cosine(5))
