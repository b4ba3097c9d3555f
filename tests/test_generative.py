"""Tests of dlbook.generative: the Fréchet distance against SciPy's matrix square root and the
closed form for Gaussians, nearest-neighbour distances against SciPy's cdist, the memorisation ratio
at its two extremes (copies of training images 0, held-out real digits about 1), class shares, the
judge (competent on real digits, reproducible, shapes), the baselines, and argument errors."""

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

keras = pytest.importorskip("keras")

from dlbook import generative as g  # noqa: E402
from dlbook.data import load_digits  # noqa: E402


def scipy_frechet(a, b):
    """The textbook formula with scipy.linalg.sqrtm (the reference FID implementations use it)."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def random_covariance(rng, d):
    factor = rng.normal(size=(d, d))
    return factor @ factor.T / d + 0.1 * np.eye(d)


# --- Fréchet distance ---------------------------------------------------------------------------

@pytest.mark.parametrize("d", [1, 3, 16])
def test_frechet_matches_scipy_sqrtm_on_the_same_features(d):
    rng = np.random.default_rng(d)
    a = rng.multivariate_normal(rng.normal(size=d), random_covariance(rng, d), size=400)
    b = rng.multivariate_normal(rng.normal(size=d), random_covariance(rng, d), size=300)
    assert g.frechet_distance(a, b) == pytest.approx(scipy_frechet(a, b), rel=1e-6, abs=1e-9)


def test_frechet_of_diagonal_gaussians_has_the_known_closed_form():
    # For diagonal covariances the distance is |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2.
    rng = np.random.default_rng(0)
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    sigma_a, sigma_b = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
    a = mu_a + sigma_a * rng.normal(size=(200_000, 3))
    b = mu_b + sigma_b * rng.normal(size=(200_000, 3))
    exact = np.sum((mu_a - mu_b) ** 2) + np.sum((sigma_a - sigma_b) ** 2)  # 5 + 5 = 10
    assert exact == 10.0
    assert g.frechet_distance(a, b) == pytest.approx(exact, rel=0.01)


def test_frechet_of_full_covariance_gaussians_approaches_the_population_value():
    rng = np.random.default_rng(1)
    cov_a, cov_b = random_covariance(rng, 4), random_covariance(rng, 4)
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    population = float(np.sum((mu_a - mu_b) ** 2) + np.trace(
        cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real))
    a = rng.multivariate_normal(mu_a, cov_a, size=200_000)
    b = rng.multivariate_normal(mu_b, cov_b, size=200_000)
    assert g.frechet_distance(a, b) == pytest.approx(population, rel=0.02)


def test_frechet_is_zero_for_equal_sets_symmetric_and_adds_a_squared_shift():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 5))
    b = rng.normal(size=(400, 5)) * 2.0
    assert g.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert g.frechet_distance(a, b) == pytest.approx(g.frechet_distance(b, a), rel=1e-9)
    shift = np.array([1.0, 0.0, 2.0, 0.0, 0.0])
    assert g.frechet_distance(a, a + shift) == pytest.approx(5.0, rel=1e-9)


def test_frechet_works_with_rank_deficient_features():
    # Dead ReLU units give zero-variance features: the distance must stay finite and correct.
    rng = np.random.default_rng(3)
    a = np.hstack([rng.normal(size=(300, 3)), np.zeros((300, 2))])
    b = np.hstack([rng.normal(size=(300, 3)) + 1.0, np.zeros((300, 2))])
    assert g.frechet_distance(a, b) == pytest.approx(g.frechet_distance(a[:, :3], b[:, :3]), rel=1e-6)


def test_frechet_argument_errors():
    with pytest.raises(ValueError, match="same number of features"):
        g.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        g.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="2-D"):
        g.frechet_distance(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="NaN"):
        g.frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))


# --- nearest neighbours and memorisation ---------------------------------------------------------

def test_nearest_neighbour_distances_and_indices_match_cdist():
    rng = np.random.default_rng(4)
    queries = rng.random((2500, 6, 6))  # more rows than one block
    references = rng.random((300, 36))
    full = cdist(queries.reshape(len(queries), -1), references)
    np.testing.assert_allclose(g.nearest_neighbour_distances(queries, references), full.min(1),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(g.nearest_neighbour_indices(queries, references), full.argmin(1))


def test_nearest_neighbour_argument_errors():
    with pytest.raises(ValueError, match="36 pixels per image"):
        g.nearest_neighbour_distances(np.zeros((3, 6, 6)), np.zeros((3, 35)))
    with pytest.raises(ValueError, match="non-empty batch"):
        g.nearest_neighbour_distances(np.zeros(0), np.zeros((3, 6, 6)))


@pytest.fixture(scope="module")
def digits_split():
    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    train, held_out, other = order[:1000], order[1000:1400], order[1400:]
    return images, labels, train, held_out, other


def test_memorisation_ratio_is_zero_for_copies_and_about_one_for_held_out_digits(digits_split):
    images, _, train, held_out, other = digits_split
    copies = images[train[:300]]
    assert g.memorisation_ratio(copies, images[train], images[held_out]) == 0.0
    fresh = g.memorisation_ratio(images[other], images[train], images[held_out])
    assert 0.9 <= fresh <= 1.1
    noise = np.random.default_rng(0).random((300, 8, 8))
    assert g.memorisation_ratio(noise, images[train], images[held_out]) > 2.0


def test_memorisation_ratio_refuses_a_held_out_set_that_is_the_training_set(digits_split):
    images, _, train, _, _ = digits_split
    with pytest.raises(ValueError, match="not held out"):
        g.memorisation_ratio(images[:10], images[train], images[train[:50]])


def test_class_shares():
    np.testing.assert_allclose(g.class_shares(np.array([0, 0, 1, 3]), 4), [0.5, 0.25, 0, 0.25])
    with pytest.raises(ValueError, match="in 0..3"):
        g.class_shares(np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="1-D array of ints"):
        g.class_shares(np.array([0.5, 1.0]), 4)


# --- the judge ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def judge(digits_split):
    images, labels, train, held_out, _ = digits_split
    return g.train_judge(images[train], labels[train], seed=0,
                         held_out=(images[held_out], labels[held_out]), epochs=10)


def test_judge_network_outputs_and_parameter_count():
    network = g.build_judge_network(64, 10, hidden=(32, 16), seed=0)
    probabilities, features = network(np.zeros((3, 64), np.float32))
    assert probabilities.shape == (3, 10) and features.shape == (3, 16)
    np.testing.assert_allclose(np.asarray(probabilities).sum(1), 1.0, rtol=1e-5)
    assert network.count_params() == (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)


def test_judge_is_competent_and_scores_real_digits_as_real(judge, digits_split):
    images, labels, train, _, other = digits_split
    assert judge.accuracy >= 0.9
    assert judge.image_shape == (8, 8) and judge.pixels == 64
    probabilities, features = judge.predict(images[other])
    assert probabilities.shape == (len(other), 10) and features.shape == (len(other), 64)
    real = judge.score(images[other])
    assert real.confidence >= 0.85 and real.classes_covered == 10
    assert real.shares.sum() == pytest.approx(1.0)
    assert 0.9 <= real.memorisation <= 1.1
    # The Fréchet distance ranks: real digits << a Gaussian fitted to pixels << the mean image.
    fitted = judge.score(g.gaussian_samples(images[train], 400, seed=0))
    mean_image = judge.score(np.repeat(images[train].mean(0, keepdims=True), 400, 0))
    assert real.frechet < 0.5 * fitted.frechet < 0.5 * mean_image.frechet
    assert mean_image.classes_covered == 1
    assert judge.confidence(images[other]) == pytest.approx(real.confidence)
    assert judge.frechet(images[other]) == pytest.approx(real.frechet)
    np.testing.assert_allclose(judge.shares(images[other]), real.shares)
    assert judge.memorisation(images[other]) == pytest.approx(real.memorisation)


def test_judge_accepts_flat_and_channel_images(judge, digits_split):
    images = digits_split[0][:20]
    square = judge.probabilities(images)
    np.testing.assert_allclose(judge.probabilities(images.reshape(20, 64)), square, rtol=1e-6)
    np.testing.assert_allclose(judge.probabilities(images[..., None]), square, rtol=1e-6)
    with pytest.raises(ValueError, match="64 pixels per image"):
        judge.score(np.zeros((5, 28, 28)))
    with pytest.raises(ValueError, match="min_share"):
        judge.score(images, min_share=1.5)


def test_train_judge_is_reproducible_and_splits_when_no_held_out_set_is_given(digits_split):
    images, labels, train, _, _ = digits_split
    first = g.train_judge(images[train], labels[train], seed=3, epochs=2)
    second = g.train_judge(images[train], labels[train], seed=3, epochs=2)
    assert len(first.held_out_images) == 250 and len(first.training_images) == 750
    assert np.bincount(first.held_out_labels).min() >= 20  # stratified
    np.testing.assert_array_equal(first.held_out_images, second.held_out_images)
    np.testing.assert_array_equal(first.probabilities(images[:50]), second.probabilities(images[:50]))


def test_train_judge_argument_errors(digits_split):
    images, labels, _, _, _ = digits_split
    with pytest.raises(ValueError, match="1797 integer class labels"):
        g.train_judge(images, labels[:-1], seed=0)
    with pytest.raises(ValueError, match="1797 integer class labels"):
        g.train_judge(images, labels.astype(float), seed=0)
    with pytest.raises(ValueError, match="held_out must be a pair"):
        g.train_judge(images, labels, seed=0, held_out=images)
    with pytest.raises(ValueError, match="64 pixels per image"):
        g.train_judge(images, labels, seed=0, held_out=(np.zeros((3, 5, 5)), np.zeros(3, int)))
    with pytest.raises(ValueError, match="seed must be an int"):
        g.train_judge(images, labels, seed=None)
    with pytest.raises(ValueError, match="held_out_fraction"):
        g.train_judge(images, labels, seed=0, held_out_fraction=1.0)
    with pytest.raises(ValueError, match="hidden must be"):
        g.build_judge_network(64, hidden=())


# --- baselines ---------------------------------------------------------------------------------

def test_gaussian_samples_match_the_data_mean_and_covariance():
    rng = np.random.default_rng(5)
    mixing = rng.normal(size=(4, 4)) * 0.03
    data = (0.5 + rng.normal(size=(20_000, 4)) @ mixing).reshape(-1, 2, 2).astype(np.float32)
    samples = g.gaussian_samples(data, 20_000, seed=1)
    assert samples.shape == (20_000, 2, 2) and samples.dtype == np.float32
    flat_data, flat_samples = data.reshape(-1, 4), samples.reshape(-1, 4)
    np.testing.assert_allclose(flat_samples.mean(0), flat_data.mean(0), atol=3e-3)
    np.testing.assert_allclose(np.cov(flat_samples, rowvar=False), np.cov(flat_data, rowvar=False),
                               atol=3e-4)
    np.testing.assert_array_equal(samples, g.gaussian_samples(data, 20_000, seed=1))


def test_gaussian_samples_of_digits_are_valid_images_but_not_copies(digits_split):
    images, _, train, held_out, _ = digits_split
    samples = g.gaussian_samples(images[train], 200, seed=0)
    assert samples.shape == (200, 8, 8) and samples.min() >= 0.0 and samples.max() <= 1.0
    assert g.memorisation_ratio(samples, images[train], images[held_out]) > 1.0
    with pytest.raises(ValueError, match="n must be an int"):
        g.gaussian_samples(images, 0, seed=0)


def test_nearest_training_images_are_training_images_and_nearest(digits_split):
    images, _, train, held_out, other = digits_split
    copies = g.nearest_training_images(images[other[:50]], images[train])
    assert copies.shape == (50, 8, 8)
    assert g.memorisation_ratio(copies, images[train], images[held_out]) == 0.0
    flat_train = images[train].reshape(len(train), -1)
    best = cdist(images[other[:50]].reshape(50, -1), flat_train).argmin(1)
    np.testing.assert_array_equal(copies, images[train][best])


def test_decode_noise_draws_seeded_standard_normal_codes():
    decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        4, use_bias=False, kernel_initializer="identity")])  # 3 x 4 identity: copies the codes
    codes = g.decode_noise(decoder, 5000, latent_dim=3, seed=7)
    assert codes.shape == (5000, 4)
    np.testing.assert_allclose(codes[:, 3], 0.0)
    assert codes[:, :3].mean() == pytest.approx(0.0, abs=0.05)
    assert codes[:, :3].std() == pytest.approx(1.0, abs=0.05)
    np.testing.assert_array_equal(codes, g.decode_noise(decoder, 5000, 3, seed=7))
    wide = g.decode_noise(lambda z: z, 5000, latent_dim=2, seed=7, scale=3.0)
    assert wide.std() == pytest.approx(3.0, rel=0.05)
    with pytest.raises(ValueError, match="callable"):
        g.decode_noise("decoder", 5, 3, seed=0)
    with pytest.raises(ValueError, match="scale must be"):
        g.decode_noise(decoder, 5, 3, seed=0, scale=0)


def test_scores_table_lists_every_row(judge, digits_split):
    images, _, _, _, other = digits_split
    table = g.scores_table({"real digits": judge.score(images[other]),
                            "noise": judge.score(np.random.default_rng(0).random((100, 8, 8)))})
    lines = table.splitlines()
    assert len(lines) == 4 and lines[2].startswith("real digits") and lines[3].startswith("noise")
    assert "10/10" in lines[2]
    with pytest.raises(ValueError, match="every value must be a Scores"):
        g.scores_table({"x": 1.0})
