"""Tests for dlbook.rl (chapter 18): returns, GAE and Bellman targets against hand computations,
the replay buffer, the networks and their NumPy forward pass, the compiled updates, acting, and a
short training that must improve on the random policy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dlbook import rl


def test_discounted_returns_by_hand():
    g = rl.discounted_returns([1.0, 1.0, 1.0], 0.9)
    np.testing.assert_allclose(g, [1 + 0.9 + 0.81, 1 + 0.9, 1.0])
    g = rl.discounted_returns([0.0, 0.0, 2.0], 0.5)
    np.testing.assert_allclose(g, [0.5, 1.0, 2.0])
    np.testing.assert_allclose(rl.discounted_returns([1, 2, 3], 0.0), [1, 2, 3])
    np.testing.assert_allclose(rl.discounted_returns([1, 2, 3], 1.0), [6, 5, 3])


def test_discounted_returns_stop_at_episode_ends_and_batch():
    g = rl.discounted_returns([1.0, 1.0, 1.0, 1.0], 0.9, dones=[False, True, False, False])
    np.testing.assert_allclose(g, [1.9, 1.0, 1.9, 1.0])
    rewards = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    g = rl.discounted_returns(rewards, 0.5)
    np.testing.assert_allclose(g, [[1.75, 1.0], [1.5, 0.0], [1.0, 0.0]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(rewards=[1.0], gamma=1.5), "gamma"),
    (dict(rewards=[], gamma=0.9), "non-empty"),
    (dict(rewards=np.ones((2, 2, 2)), gamma=0.9), "non-empty"),
    (dict(rewards=[1.0, 1.0], gamma=0.9, dones=[True]), "dones"),
])
def test_discounted_returns_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rl.discounted_returns(**kwargs)


def test_gae_lambda_zero_is_td_error_and_lambda_one_is_bootstrapped_return():
    rng = np.random.default_rng(0)
    r, v, v_next = rng.normal(size=(3, 5, 2))
    no = np.zeros((5, 2), bool)
    adv, targets = rl.gae_advantages(r, v, v_next, no, no, 0.9, 0.0)
    np.testing.assert_allclose(adv, r + 0.9 * v_next - v)
    np.testing.assert_allclose(targets, adv + v)
    v_next[:-1] = v[1:]               # within an episode, s_{t+1} is the next step's state
    adv, _ = rl.gae_advantages(r, v, v_next, no, no, 0.9, 1.0)
    # lambda = 1: the discounted sum of rewards to the rollout's end, bootstrapped there
    expected = rl.discounted_returns(r, 0.9) + 0.9 ** np.arange(5, 0, -1)[:, None] * v_next[-1]
    np.testing.assert_allclose(adv, expected - v)


def test_gae_by_hand_with_termination_and_truncation():
    r = np.array([[1.0], [1.0], [1.0]])
    v = np.array([[1.5], [3.0], [2.0]])
    v_next = np.array([[3.0], [5.0], [4.0]])
    term = np.array([[False], [True], [False]])
    trunc = np.array([[False], [False], [True]])
    adv, targets = rl.gae_advantages(r, v, v_next, term, trunc, 0.5, 0.5)
    d0 = 1 + 0.5 * 3.0 - 1.5          # 1
    d1 = 1 - 3.0                      # terminated: no bootstrap, and the sum stops here
    d2 = 1 + 0.5 * 4.0 - 2.0          # truncated: bootstraps
    np.testing.assert_allclose(adv[:, 0], [d0 + 0.25 * d1, d1, d2])
    np.testing.assert_allclose(targets[:, 0], [2.0, 1.0, 3.0])
    # each rule changes the numbers: the sum carried across the termination would give -1.75
    assert not np.isclose(adv[1, 0], d1 + 0.25 * d2)
    # and a truncation also stops the sum at the end of its episode
    r2, v2 = np.ones((2, 1)), np.array([[1.0], [1.0]])
    adv2, _ = rl.gae_advantages(r2, v2, np.array([[2.0], [1.0]]), np.zeros((2, 1), bool),
                                np.array([[True], [False]]), 0.5, 1.0)
    np.testing.assert_allclose(adv2[:, 0], [1 + 0.5 * 2 - 1, 1 + 0.5 * 1 - 1])


def test_gae_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="next_values"):
        rl.gae_advantages(x, x, np.zeros((3, 1)), x, x, 0.9, 0.9)
    with pytest.raises(ValueError, match="lam"):
        rl.gae_advantages(x, x, x, x, x, 0.9, 2.0)


def test_bellman_targets_by_hand_and_compiled():
    next_q = np.array([[1.0, 3.0], [2.0, -1.0], [0.5, 0.5]], "float32")
    y = rl.bellman_targets([1.0, 0.0, 1.0], next_q, [0, 0, 1], 0.9)
    np.testing.assert_allclose(np.asarray(y), [1 + 0.9 * 3, 0.9 * 2, 1.0], rtol=1e-6)
    compiled = tf.function(lambda r, q, d: rl.bellman_targets(r, q, d, 0.9))
    np.testing.assert_allclose(np.asarray(compiled(tf.constant([1.0, 0.0, 1.0]), next_q,
                                                   tf.constant([0.0, 0.0, 1.0]))),
                               np.asarray(y), rtol=1e-6)
    with pytest.raises(ValueError, match="batch, n_actions"):
        rl.bellman_targets([1.0], [1.0, 2.0], [0], 0.9)
    with pytest.raises(ValueError, match="gamma"):
        rl.bellman_targets([1.0], next_q[:1], [0], -0.1)


def test_replay_buffer_ring_and_sampling():
    buf = rl.ReplayBuffer(5, 2, seed=0)
    assert len(buf) == 0
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4)
    for start in (0, 3):
        n = 3
        obs = np.arange(start, start + n, dtype="float32")[:, None].repeat(2, 1)
        buf.add(obs, np.arange(n) % 2, np.arange(start, start + n), obs + 1, np.zeros(n))
    assert len(buf) == 5
    # the 6 transitions 0..5 went in; 0 was overwritten by 5
    assert sorted(buf.rewards.tolist()) == [1, 2, 3, 4, 5]
    o, a, r, o2, d = buf.sample(8, n_batches=3)
    assert o.shape == (3, 8, 2) and a.shape == (3, 8) and d.shape == (3, 8)
    np.testing.assert_array_equal(o[..., 0], r)   # each sample keeps its transition together
    np.testing.assert_array_equal(o2, o + 1)
    again = rl.ReplayBuffer(5, 2, seed=0)
    again.add(np.zeros((5, 2)), np.zeros(5), np.arange(5), np.zeros((5, 2)), np.zeros(5))
    other = rl.ReplayBuffer(5, 2, seed=0)
    other.add(np.zeros((5, 2)), np.zeros(5), np.arange(5), np.zeros((5, 2)), np.zeros(5))
    np.testing.assert_array_equal(again.sample(10)[2], other.sample(10)[2])


def test_replay_buffer_samples_only_stored_transitions():
    buf = rl.ReplayBuffer(100, 1, seed=1)
    buf.add(np.ones((3, 1)), np.zeros(3), np.full(3, 7.0), np.ones((3, 1)), np.zeros(3))
    assert set(buf.sample(50)[2].ravel().tolist()) == {7.0}


def test_replay_buffer_errors():
    with pytest.raises(ValueError, match="capacity"):
        rl.ReplayBuffer(0, 4, seed=0)
    buf = rl.ReplayBuffer(4, 4, seed=0)
    with pytest.raises(ValueError, match="add takes a batch"):
        buf.add(np.zeros((2, 3)), [0, 0], [0, 0], np.zeros((2, 3)), [0, 0])
    with pytest.raises(ValueError, match="add takes a batch"):
        buf.add(np.zeros((2, 4)), [0], [0, 0], np.zeros((2, 4)), [0, 0])
    with pytest.raises(ValueError, match="does not fit"):
        buf.add(np.zeros((5, 4)), [0] * 5, [0] * 5, np.zeros((5, 4)), [0] * 5)
    with pytest.raises(ValueError, match="seed"):
        rl.ReplayBuffer(4, 4, seed=-1)


def test_mlp_parameters_and_numpy_forward_agree_with_keras():
    model = rl.mlp(2, (32, 16), seed=3)
    assert model.count_params() == (4 * 32 + 32) + (32 * 16 + 16) + (16 * 2 + 2)
    x = np.random.default_rng(0).normal(size=(7, 4)).astype("float32")
    np.testing.assert_allclose(rl.numpy_forward(model.get_weights(), x),
                               np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    same = rl.mlp(2, (32, 16), seed=3)
    for a, b in zip(model.get_weights(), same.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="pairs"):
        rl.numpy_forward(model.get_weights()[:3], x)
    with pytest.raises(ValueError, match="hidden width"):
        rl.mlp(2, (0,), seed=0)


def test_sample_from_logits_matches_softmax():
    rng = np.random.default_rng(0)
    logits = np.tile([[0.0, np.log(3.0)]], (20_000, 1))
    a = rl.sample_from_logits(logits, rng)
    assert abs(a.mean() - 0.75) < 0.01
    assert set(rl.sample_from_logits(np.array([[50.0, -50.0]] * 100), rng).tolist()) == {0}


def test_run_episodes_is_reproducible_and_counts_steps():
    def random_act(seed):
        rng = np.random.default_rng(seed)
        return lambda obs: rng.integers(0, 2, len(obs))

    a = rl.run_episodes(random_act(5), 50, seed=11, record=True)
    b = rl.run_episodes(random_act(5), 50, seed=11, record=True)
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.returns, a.alive.sum(axis=0))
    np.testing.assert_array_equal(a.returns, a.rewards.sum(axis=0))
    assert not a.truncated.any()           # a random policy never lasts 500 steps
    # each episode's final observation is the state that ended it: pole past 12° or cart off track
    ended = (np.abs(a.final_obs[:, 2]) > np.radians(12)) | (np.abs(a.final_obs[:, 0]) > 2.4)
    assert ended.all()
    last = a.alive.sum(axis=0) - 1
    assert not np.array_equal(a.final_obs, a.obs[last, np.arange(50)])
    assert 15 < a.returns.mean() < 30          # the random policy's ~22 steps
    c = rl.run_episodes(random_act(5), 50, seed=12)
    assert not np.array_equal(a.returns, c.returns)
    with pytest.raises(ValueError, match="copies"):
        rl.run_episodes(random_act(0), 3, seed=0, env=rl.make_vector_env(2))


def test_reinforce_returns_bootstrap_only_truncated_episodes():
    episodes = rl.Episodes(returns=np.array([2.0, 3.0]), truncated=np.array([False, True]),
                           rewards=np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]),
                           alive=np.array([[True, True], [True, True], [False, True]]))
    g = rl.reinforce_returns(episodes, 0.5, final_values=[7.0, 4.0])
    np.testing.assert_allclose(g, [[1.5, 2.25], [1.0, 2.5], [0.0, 3.0]])
    np.testing.assert_allclose(rl.reinforce_returns(episodes, 0.5),
                               [[1.5, 1.75], [1.0, 1.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="final_values"):
        rl.reinforce_returns(episodes, 0.5, final_values=[1.0])
    with pytest.raises(ValueError, match="recorded"):
        rl.reinforce_returns(rl.Episodes(np.ones(2), np.zeros(2, bool)), 0.5)


def test_policy_gradient_variance_with_a_zero_and_a_fitted_critic():
    keras.utils.set_random_seed(0)
    policy = rl.mlp(2, (8,), seed=0)
    critic = rl.mlp(1, (8,), seed=1)
    critic.set_weights([np.zeros_like(w) for w in critic.get_weights()])
    run = rl.TrainingRun(policy, critic=critic, value_scale=0.01)
    without, with_ = rl.policy_gradient_variance(run, 8, seed=3)
    assert without > 0 and np.isclose(without, with_)   # V = 0: the same estimate
    # a critic that predicts the batch's typical return (a constant) already cuts the variance
    weights = critic.get_weights()
    weights[-1][:] = 0.01 * 8.0
    critic.set_weights(weights)
    without2, with2 = rl.policy_gradient_variance(run, 8, seed=3)
    assert np.isclose(without2, without) and with2 < without
    with pytest.raises(ValueError, match="critic"):
        rl.policy_gradient_variance(rl.TrainingRun(policy), 4, seed=0)


def test_policy_gradient_update_raises_probability_of_advantaged_action():
    keras.utils.set_random_seed(0)
    policy, value = rl.mlp(2, (8,), seed=0), rl.mlp(1, (8,), seed=1)
    update = rl.policy_gradient_update(policy, value, keras.optimizers.SGD(0.1))
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    before = np.asarray(keras.ops.softmax(policy(obs)))[:, 0].mean()
    v_before = float(np.mean((np.asarray(value(obs))[:, 0] - 5.0) ** 2))
    for _ in range(5):
        pl, vl, ent = update(obs, np.zeros(16, "int32"), np.ones(16, "float32"),
                             np.full(16, 5.0, "float32"))
    after = np.asarray(keras.ops.softmax(policy(obs)))[:, 0].mean()
    assert after > before
    assert float(vl) < v_before
    assert 0 < float(ent) <= np.log(2) + 1e-6


def test_dqn_update_moves_q_towards_bellman_target():
    keras.utils.set_random_seed(0)
    q, q_target = rl.mlp(2, (16,), seed=0), rl.mlp(2, (16,), seed=5)
    update = rl.dqn_update(q, q_target, keras.optimizers.Adam(0.01), gamma=0.9)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(1, 32, 4)).astype("float32")
    nxt = rng.normal(size=(1, 32, 4)).astype("float32")
    act = rng.integers(0, 2, (1, 32)).astype("int32")
    rew, term = np.ones((1, 32), "float32"), np.zeros((1, 32), "float32")
    target = np.asarray(rl.bellman_targets(rew[0], q_target(nxt[0]), term[0], 0.9))

    def error():
        chosen = np.take_along_axis(np.asarray(q(obs[0])), act[0][:, None], 1)[:, 0]
        return np.abs(chosen - target).mean()

    before = error()
    stack = [np.repeat(x, 20, axis=0) for x in (obs, act, rew, nxt, term)]
    update(*stack)                    # 20 gradient steps in one call
    assert error() < 0.5 * before
    # the target network is not trained
    np.testing.assert_allclose(np.asarray(rl.bellman_targets(rew[0], q_target(nxt[0]), term[0],
                                                             0.9)), target)


def test_training_improves_on_random_policy():
    random = np.random.default_rng(0)
    baseline = rl.run_episodes(lambda o: random.integers(0, 2, len(o)), 50, seed=1).returns
    keras.utils.set_random_seed(0)
    run = rl.train_reinforce(seed=0, iterations=15)
    trained = rl.run_episodes(run.greedy(), 20, seed=2).returns
    assert trained.mean() > 2 * baseline.mean()
    assert len(run.episode_returns) == 15 * 16
    assert np.all(np.diff(run.episode_end_steps) > 0)
    # the critic has learned the returns' scale: it explains part of their variance
    episodes = rl.run_episodes(run.greedy(), 16, seed=4, record=True)
    g = rl.reinforce_returns(episodes, 0.99, run.values(episodes.final_obs))[episodes.alive]
    v = run.values(episodes.obs[episodes.alive])
    assert 1 - np.var(g - v) / np.var(g) > 0.2


def test_short_dqn_and_a2c_runs_record_episodes():
    keras.utils.set_random_seed(0)
    run = rl.train_dqn(seed=0, env_steps=1500, warmup=500)
    assert run.env_steps >= 1500 - 4 and len(run.episode_returns) > 10
    run = rl.train_a2c(seed=0, updates=5, num_envs=4, rollout=8)
    assert len(run.episode_returns) >= 1


@pytest.mark.parametrize("call, message", [
    (lambda: rl.train_reinforce(seed=0, iterations=0), "iterations"),
    (lambda: rl.train_a2c(seed=0, updates=1, rollout=0), "rollout"),
    (lambda: rl.train_dqn(seed=0, env_steps=10, epsilon=(0.1, 0.5, 0.5)), "epsilon"),
    (lambda: rl.train_dqn(seed=-2, env_steps=10), "seed"),
    (lambda: rl.train_reinforce(seed=0, iterations=1, gamma=1.0), "value_scale"),
    (lambda: rl.train_a2c(seed=0, updates=1, value_scale=0.0), "value_scale"),
])
def test_training_argument_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_learning_curve_averages_the_last_episodes():
    run = rl.TrainingRun(model=None, episode_returns=[10.0, 20.0, 30.0, 40.0],
                         episode_end_steps=[10, 30, 60, 100])
    curve = rl.learning_curve(run, [5, 10, 59, 60, 200], window=2)
    np.testing.assert_allclose(curve, [np.nan, 10.0, 15.0, 25.0, 35.0])
    with pytest.raises(ValueError, match="window"):
        rl.learning_curve(run, [5], window=0)


def test_training_run_records_finished_episodes_of_a_vector_step():
    run = rl.TrainingRun(model=None)
    sums = np.array([2.0, 5.0, 1.0])
    done = run.record(sums, np.array([1.0, 1.0, 1.0]), np.array([False, True, True]), steps=40)
    assert run.episode_returns == [6.0, 2.0] and run.episode_end_steps == [40, 40]
    np.testing.assert_array_equal(sums, [3.0, 0.0, 0.0])
    np.testing.assert_array_equal(done, [False, True, True])
