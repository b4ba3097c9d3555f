"""Tests of dlbook.gan: the optimal discriminator against a numerical maximisation, the generator
losses' gradients against tf.GradientTape and finite differences, the gradient penalty against its
closed form for a linear critic (second-order gradient through a nested tape), the synthetic ring
and mode counting on constructed samples, network shapes and parameter counts, each player's step
changing only its own weights, seeded and reproducible training and sampling, and argument errors."""

import numpy as np
import pytest
from scipy.stats import norm

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dlbook import gan  # noqa: E402

# --- the theory --------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, t", [(0.3, 0.7, 1.0), (2.0, 0.5, 1.0), (1.0, 1.0, 0.9),
                                     (0.05, 1.2, 0.9)])
def test_optimal_discriminator_maximises_the_pointwise_objective(a, b, t):
    # t·a·log y + (1 - t)·a·log(1 - y) + b·log(1 - y): real labelled t, fake labelled 0
    y = np.linspace(1e-6, 1 - 1e-6, 200_001)
    objective = t * a * np.log(y) + ((1 - t) * a + b) * np.log(1 - y)
    best = y[np.argmax(objective)]
    assert gan.optimal_discriminator(np.array([a]), np.array([b]), real_target=t)[0] == \
        pytest.approx(best, abs=1e-5)


def test_optimal_discriminator_is_a_half_where_the_densities_agree():
    p = norm.pdf(np.linspace(-3, 3, 7))
    np.testing.assert_allclose(gan.optimal_discriminator(p, p), 0.5)
    np.testing.assert_allclose(gan.optimal_discriminator(p, p, real_target=0.9), 0.45)
    with pytest.raises(ValueError, match="same shape"):
        gan.optimal_discriminator(p, p[:3])
    with pytest.raises(ValueError, match="non-negative"):
        gan.optimal_discriminator(-p, p)
    with pytest.raises(ValueError, match="real_target"):
        gan.optimal_discriminator(p, p, real_target=1.5)


def test_generator_loss_gradients_match_the_tape_and_finite_differences():
    logits = np.array([-6.9, -2.0, 0.0, 1.5])
    saturating, non_saturating = gan.generator_loss_gradients(logits)
    gen, disc = gan.build_mlp(2, 2, (4,), 0, "g"), gan.build_mlp(2, 1, (4,), 1, "d")
    for name, expected in (("saturating", saturating), ("non-saturating", non_saturating)):
        model = gan.GAN(gen, disc, latent_dim=2, seed=0, generator_loss=name)
        variable = tf.Variable(logits[:, None], dtype=tf.float64)
        with tf.GradientTape() as tape:
            loss = model.generator_objective(variable) * len(logits)  # a sum, not a mean
        np.testing.assert_allclose(tape.gradient(loss, variable).numpy()[:, 0], expected,
                                   rtol=1e-6)
        h = 1e-6
        for i in range(len(logits)):
            up, down = logits.copy(), logits.copy()
            up[i] += h
            down[i] -= h
            numeric = (float(model.generator_objective(tf.constant(up))) -
                       float(model.generator_objective(tf.constant(down)))) * len(logits) / (2 * h)
            assert numeric == pytest.approx(expected[i], rel=1e-5, abs=1e-8)
    d = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(non_saturating / saturating, (1 - d) / d)


def test_gradient_penalty_of_a_linear_critic_and_its_second_order_gradient():
    inputs = keras.Input((3,))
    critic = keras.Model(inputs, keras.layers.Dense(1, use_bias=True, name="w")(inputs))
    w = np.array([[0.6], [-1.2], [2.0]], dtype=np.float32)
    critic.get_layer("w").set_weights([w, np.array([0.3], np.float32)])
    real = tf.random.stateless_normal((5, 3), seed=(1, 2))
    fake = tf.random.stateless_normal((5, 3), seed=(3, 4))
    alpha = tf.random.stateless_uniform((5, 1), seed=(5, 6))
    with tf.GradientTape() as tape:
        penalty, norms = gan.gradient_penalty(critic, real, fake, alpha)
    norm_w = np.linalg.norm(w)
    np.testing.assert_allclose(norms.numpy(), norm_w, rtol=1e-5)   # ∇f = w everywhere
    assert float(penalty) == pytest.approx((norm_w - 1) ** 2, rel=1e-5)
    kernel = critic.get_layer("w").kernel
    gradient = tape.gradient(penalty, kernel)                       # 2 (‖w‖ − 1) w / ‖w‖
    np.testing.assert_allclose(gradient.numpy(), 2 * (norm_w - 1) * w / norm_w, rtol=1e-4)


# --- the ring and counting modes ---------------------------------------------------------------

def test_ring_of_gaussians_is_seeded_and_centred_on_the_ring():
    centres = gan.ring_centres(8, 2.0)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, rtol=1e-6)
    a, b = gan.ring_of_gaussians(4000, 7, std=0.05), gan.ring_of_gaussians(4000, 7, std=0.05)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4000, 2) and a.dtype == np.float32
    assert not np.array_equal(a, gan.ring_of_gaussians(4000, 8, std=0.05))
    coverage = gan.mode_coverage(a, centres, 0.05)
    assert coverage.covered == 8 and coverage.on_mode_share > 0.97
    assert abs(coverage.counts.sum() / 4000 - coverage.on_mode_share) < 1e-12
    assert np.all(np.abs(coverage.counts / coverage.counts.sum() - 1 / 8) < 0.03)


def test_mode_coverage_counts_constructed_samples():
    centres = gan.ring_centres()
    collapsed = np.concatenate([np.repeat(centres[:3], 30, axis=0),    # 3 modes, 30 each
                                np.repeat(centres[3:4], 5, axis=0),    # a 4th with 5 (< 1%... of 595)
                                np.zeros((500, 2))])                  # 500 off every mode
    coverage = gan.mode_coverage(collapsed, centres, std=0.05, min_share=0.01)
    assert coverage.counts.tolist() == [30, 30, 30, 5, 0, 0, 0, 0]
    assert coverage.covered == 3
    assert coverage.on_mode_share == pytest.approx(95 / 595)
    with pytest.raises(ValueError, match="NaN"):
        gan.mode_coverage(np.full((3, 2), np.nan), centres, 0.05)
    with pytest.raises(ValueError, match="same d"):
        gan.mode_coverage(np.zeros((3, 3)), centres, 0.05)
    with pytest.raises(ValueError, match="min_share"):
        gan.mode_coverage(collapsed, centres, 0.05, min_share=1.0)


def test_mode_coverage_separates_where_the_mass_goes_from_how_sharp_it_is():
    centres = gan.ring_centres()
    # a blurred but even cover: every sample 0.3 (far outside 3σ = 0.15) from its own centre
    angles = np.linspace(0, 2 * np.pi, 800, endpoint=False)
    offsets = 0.3 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    blurred = np.repeat(centres, 100, axis=0) + offsets
    coverage = gan.mode_coverage(blurred, centres, std=0.05)
    assert coverage.covered == 0 and coverage.on_mode_share == 0.0
    assert np.allclose(coverage.nearest_shares, 1 / 8)
    assert coverage.median_distance == pytest.approx(0.3, abs=1e-6)
    # every sample on one centre: sharp, but all mass on one mode
    collapsed = gan.mode_coverage(np.repeat(centres[2:3], 50, axis=0), centres, std=0.05)
    assert collapsed.nearest_shares.tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert collapsed.median_distance == pytest.approx(0.0, abs=1e-6)


# --- networks ------------------------------------------------------------------------------------

def test_digit_networks_shapes_and_parameter_counts():
    g = gan.build_digit_generator(16, seed=0)
    d = gan.build_digit_discriminator(seed=0)
    z = np.zeros((4, 16), np.float32)
    images = np.asarray(g(z))
    assert images.shape == (4, 8, 8, 1) and images.min() >= -1 and images.max() <= 1
    assert np.asarray(d(images)).shape == (4, 1)
    assert g.count_params() == (16 * 128 + 128) + (128 * 128 + 128) + (128 * 64 + 64)
    assert d.count_params() == (64 * 128 + 128) + (128 * 128 + 128) + (128 + 1)
    gc = gan.build_digit_generator(16, seed=0, num_classes=10)
    dc = gan.build_digit_discriminator(seed=0, num_classes=10)
    labels = np.array([0, 3, 7, 9], np.int32)
    assert np.asarray(gc([z, labels])).shape == (4, 8, 8, 1)
    assert np.asarray(dc([images, labels])).shape == (4, 1)
    assert gc.count_params() == g.count_params() + 10 * 128
    assert dc.count_params() == d.count_params() + 10 * 128
    # the label matters: same noise, different labels, different images
    assert not np.allclose(np.asarray(gc([z, labels])), np.asarray(gc([z, labels[::-1]])))
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers)


def test_build_mlp_and_argument_errors():
    model = gan.build_mlp(2, 1, (8, 8), seed=0, name="d")
    assert model.count_params() == (2 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    with pytest.raises(ValueError, match="hidden"):
        gan.build_mlp(2, 1, (), seed=0, name="d")
    with pytest.raises(ValueError, match="seed"):
        gan.build_digit_generator(16, seed=-1)
    with pytest.raises(ValueError, match="latent_dim"):
        gan.build_digit_generator(0, seed=0)


# --- the models --------------------------------------------------------------------------------

def _ring_gan(seed=0, **kwargs):
    model = gan.GAN(gan.build_mlp(2, 2, (16,), seed + 1, "g"),
                    gan.build_mlp(2, 1, (16,), seed + 2, "d"), latent_dim=2, seed=seed, **kwargs)
    return model


@pytest.fixture(scope="module")
def ring():
    return gan.ring_of_gaussians(512, 0, std=0.05)


def test_each_player_moves_only_its_own_weights(ring):
    model = _ring_gan()
    model.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.0))
    g0 = [w.copy() for w in model.generator.get_weights()]
    d0 = [w.copy() for w in model.discriminator.get_weights()]
    gan.fit_adversarial(model, ring, steps=2, batch_size=64, seed=0, epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(g0, model.generator.get_weights(), strict=True))
    assert not all(np.array_equal(a, b)
                   for a, b in zip(d0, model.discriminator.get_weights(), strict=True))
    model = _ring_gan()
    model.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.1))
    g0 = [w.copy() for w in model.generator.get_weights()]
    d0 = [w.copy() for w in model.discriminator.get_weights()]
    history = gan.fit_adversarial(model, ring, steps=2, batch_size=64, seed=0, epochs=1)
    assert all(np.array_equal(a, b)
               for a, b in zip(d0, model.discriminator.get_weights(), strict=True))
    assert not all(np.array_equal(a, b)
                   for a, b in zip(g0, model.generator.get_weights(), strict=True))
    assert set(history.history) >= {"d_loss", "g_loss", "d_real", "d_fake"}


def test_training_and_sampling_are_reproducible(ring):
    runs = []
    for _ in range(2):
        model = _ring_gan(seed=3, real_target=0.9)
        model.compile(d_optimizer=keras.optimizers.Adam(1e-3),
                      g_optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=5)
        gan.fit_adversarial(model, ring, steps=10, batch_size=32, seed=1, epochs=2)
        runs.append((model.get_weights(), model.generate(6), model.generate(6)))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[0][2])  # each call draws new noise
    assert runs[0][1].shape == (6, 2)


def test_the_discriminator_loss_is_the_smoothed_cross_entropy():
    logits = tf.constant([[-1.0], [0.5], [3.0]])
    expected = keras.losses.binary_crossentropy(tf.fill((3, 1), 0.9), logits, from_logits=True)
    assert float(gan._bce_with_logits(0.9, logits)) == pytest.approx(float(np.mean(expected)),
                                                                     rel=1e-5)


def test_wgan_gp_trains_under_determinism_and_logs_the_gradient_norm(ring):
    def make():
        return gan.WGANGP(gan.build_mlp(2, 2, (16,), 1, "g"), gan.build_mlp(2, 1, (16,), 2, "c"),
                          latent_dim=2, seed=4, critic_steps=2, gp_weight=10.0)
    runs = []
    for _ in range(2):
        model = make()
        model.compile(d_optimizer=keras.optimizers.Adam(1e-3, 0.5, 0.9),
                      g_optimizer=keras.optimizers.Adam(1e-3, 0.5, 0.9))
        history = gan.fit_adversarial(model, ring, steps=4, batch_size=32, seed=0, epochs=2)
        runs.append(model.get_weights())
    assert set(history.history) >= {"critic_loss", "g_loss", "wasserstein", "gradient_norm"}
    assert np.all(np.isfinite(history.history["gradient_norm"]))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    norms = model.interpolate_gradient_norms(ring[:10], ring[10:20], seed=0)
    assert norms.shape == (10,) and np.all(norms > 0)
    inputs = keras.Input((2,))
    normed = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.BatchNormalization()(inputs)))
    with pytest.raises(ValueError, match="BatchNormalization"):
        gan.WGANGP(gan.build_mlp(2, 2, (4,), 1, "g"), normed, latent_dim=2, seed=0)
    with pytest.raises(ValueError, match="gp_weight"):
        gan.WGANGP(gan.build_mlp(2, 2, (4,), 1, "g"), gan.build_mlp(2, 1, (4,), 2, "c"),
                   latent_dim=2, seed=0, gp_weight=-1.0)


def test_conditional_gan_trains_and_generates_the_requested_labels():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (64, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    model = gan.ConditionalGAN(gan.build_digit_generator(4, 1, num_classes=10, hidden=(8,)),
                               gan.build_digit_discriminator(2, num_classes=10, hidden=(8,)),
                               latent_dim=4, seed=3, num_classes=10)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    snapshots = gan.Snapshots([np.zeros((3, 4), np.float32), np.array([1, 2, 3], np.int32)])
    gan.fit_adversarial(model, (images, labels), steps=4, batch_size=16, seed=0, epochs=2,
                        callbacks=[snapshots])
    assert len(snapshots.images) == 2 and snapshots.images[0].shape == (3, 8, 8, 1)
    assert model.generate(np.array([0, 5, 9])).shape == (3, 8, 8, 1)
    for bad in (np.array([10]), np.array([], dtype=int), np.array([0.5])):
        with pytest.raises(ValueError, match="labels"):
            model.generate(bad)


def test_train_discriminator_approaches_the_optimum():
    rng = np.random.default_rng(0)
    real = rng.normal(0.0, 1.0, (4000, 1)).astype(np.float32)
    fake = rng.normal(2.0, 0.5, (4000, 1)).astype(np.float32)
    network = gan.train_discriminator(real, fake, seed=0, epochs=20)
    grid = np.linspace(-1.5, 2.5, 41, dtype=np.float32)[:, None]
    trained = np.asarray(keras.ops.sigmoid(network(grid)))[:, 0]
    best = gan.optimal_discriminator(norm.pdf(grid[:, 0]), norm.pdf(grid[:, 0], 2.0, 0.5))
    assert np.max(np.abs(trained - best)) < 0.1
    with pytest.raises(ValueError, match="same d"):
        gan.train_discriminator(real, np.zeros((5, 2)), seed=0)


def test_adversarial_argument_errors(ring):
    with pytest.raises(ValueError, match="real_target"):
        _ring_gan(real_target=0.4)
    with pytest.raises(ValueError, match="generator_loss"):
        _ring_gan(generator_loss="minimax")
    with pytest.raises(ValueError, match="generator must be a keras.Model"):
        gan.GAN(lambda z: z, gan.build_mlp(2, 1, (4,), 0, "d"), latent_dim=2, seed=0)
    model = _ring_gan()
    optimizer = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="two optimizers"):
        model.compile(d_optimizer=optimizer, g_optimizer=optimizer)
    with pytest.raises(ValueError, match="d_optimizer"):
        model.compile(d_optimizer="adam", g_optimizer=optimizer)
    model.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="multiple of epochs"):
        gan.fit_adversarial(model, ring, steps=7, batch_size=8, seed=0, epochs=2)
    with pytest.raises(ValueError, match="n must be"):
        model.generate(0)
