"""Deep reinforcement learning on CartPole: returns, advantages, Bellman targets, a replay buffer,
the agents' networks, their compiled update steps, fast acting and evaluation.

The arithmetic of RL lives in small NumPy/``keras.ops`` functions that are checked against hand
computations: :func:`discounted_returns` (the return :math:`G_t = r_t + \\gamma G_{t+1}`),
:func:`gae_advantages` (generalised advantage estimation) and :func:`bellman_targets` (the DQN
target :math:`r + \\gamma (1 - d) \\max_{a'} Q^-(s', a')`). :class:`ReplayBuffer` is a ring buffer of
transitions. The agents are small Keras MLPs (:func:`mlp`) acted with a NumPy forward pass
(:func:`numpy_forward`) on ``gymnasium``'s vectorised CartPole, and trained by compiled
(``tf.function``) update steps: :func:`policy_gradient_update` (REINFORCE with a baseline and
advantage actor-critic) and :func:`dqn_update`. :func:`train_reinforce`, :func:`train_a2c` and
:func:`train_dqn` are the three training loops; :func:`run_episodes` plays whole episodes (and
evaluates a policy). Taught in chapter 18.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from dlbook.checks import check_int as _check_int

ENV_ID = "CartPole-v1"
OBS_DIM = 4
N_ACTIONS = 2


def _check_gamma(argument: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{argument} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------- the arithmetic


def discounted_returns(rewards, gamma: float, dones=None) -> np.ndarray:
    """The discounted return :math:`G_t = r_t + \\gamma G_{t+1}` of every step, computed backwards.

    ``rewards`` is ``(T,)`` for one episode or ``(T, N)`` for ``N`` episodes side by side (time
    first). ``dones`` (same shape, optional) marks the last step of an episode: the sum stops
    there, so :math:`G_t = r_t` where ``dones[t]``. Steps after the end of a shorter episode should
    carry reward 0. Taught in chapter 18.
    """
    gamma = _check_gamma("gamma", gamma)
    rewards = np.asarray(rewards, dtype="float64")
    if rewards.ndim not in (1, 2) or rewards.shape[0] == 0:
        raise ValueError(f"rewards must be a non-empty (T,) or (T, N) array, got shape "
                         f"{rewards.shape}")
    if dones is None:
        keep = np.ones_like(rewards)
    else:
        dones = np.asarray(dones, dtype=bool)
        if dones.shape != rewards.shape:
            raise ValueError(f"dones must have the shape of rewards {rewards.shape}, got "
                             f"{dones.shape}")
        keep = 1.0 - dones
    returns = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * keep[t] * running
        returns[t] = running
    return returns


def gae_advantages(rewards, values, next_values, terminated, truncated, gamma: float,
                   lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates and value targets for a ``(T, N)`` rollout (time first).

    The one-step TD error :math:`\\delta_t = r_t + \\gamma (1 - \\text{term}_t) V(s_{t+1}) - V(s_t)`
    bootstraps from ``next_values`` (the value of the observation each step led to) unless the
    episode *terminated*; a *truncated* episode (time limit) still bootstraps. The advantage
    :math:`A_t = \\delta_t + \\gamma\\lambda A_{t+1}` stops at every episode end and at the end of the
    rollout. ``lam = 1`` gives the bootstrapped n-step return minus :math:`V(s_t)`; ``lam = 0`` gives
    :math:`\\delta_t`. Returns ``(advantages, value_targets)``, the targets being
    :math:`A_t + V(s_t)`. Taught in chapter 18.
    """
    gamma = _check_gamma("gamma", gamma)
    lam = _check_gamma("lam", lam)
    rewards = np.asarray(rewards, dtype="float64")
    arrays = [np.asarray(a, dtype="float64") for a in (values, next_values)]
    flags = [np.asarray(a, dtype=bool) for a in (terminated, truncated)]
    for name, a in zip(("values", "next_values", "terminated", "truncated"), arrays + flags,
                       strict=True):
        if a.shape != rewards.shape:
            raise ValueError(f"{name} must have the shape of rewards {rewards.shape}, got "
                             f"{a.shape}")
    values, next_values = arrays
    terminated, truncated = flags
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    keep = 1.0 - (terminated | truncated)
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        running = deltas[t] + gamma * lam * keep[t] * running
        advantages[t] = running
    return advantages, advantages + values


def bellman_targets(rewards, next_q, terminated, gamma: float):
    """The DQN regression target :math:`y = r + \\gamma (1 - d) \\max_{a'} Q^-(s', a')`.

    ``next_q`` is ``(B, n_actions)``: the *target* network's action values at the next states;
    ``terminated`` (``d``, 0 or 1) cuts the bootstrap at a terminal state (not at a time-limit
    truncation). Written with ``keras.ops``, so it takes NumPy arrays and runs inside a compiled
    step alike. Taught in chapter 18.
    """
    gamma = _check_gamma("gamma", gamma)
    next_q = keras.ops.convert_to_tensor(next_q, dtype="float32")
    if len(next_q.shape) != 2:
        raise ValueError(f"next_q must be (batch, n_actions), got shape {tuple(next_q.shape)}")
    rewards = keras.ops.cast(rewards, "float32")
    terminated = keras.ops.cast(terminated, "float32")
    return rewards + gamma * (1.0 - terminated) * keras.ops.max(next_q, axis=1)


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions ``(s, a, r, s', terminated)`` for DQN.

    :meth:`add` appends a batch of transitions (the oldest are overwritten once ``capacity`` is
    reached); :meth:`sample` draws ``n_batches`` minibatches uniformly with replacement, from a
    generator seeded by ``seed``. Taught in chapter 18.
    """

    def __init__(self, capacity: int, obs_dim: int, seed: int):
        self.capacity = _check_int("capacity", capacity, 1)
        obs_dim = _check_int("obs_dim", obs_dim, 1)
        self.rng = np.random.default_rng(_check_seed(seed))
        self.obs = np.zeros((self.capacity, obs_dim), "float32")
        self.next_obs = np.zeros((self.capacity, obs_dim), "float32")
        self.actions = np.zeros(self.capacity, "int32")
        self.rewards = np.zeros(self.capacity, "float32")
        self.terminated = np.zeros(self.capacity, "float32")
        self.size = 0
        self.position = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        obs = np.asarray(obs, "float32")
        n = len(obs)
        parts = (np.asarray(actions), np.asarray(rewards), np.asarray(next_obs),
                 np.asarray(terminated))
        if obs.ndim != 2 or obs.shape[1] != self.obs.shape[1] or any(len(p) != n for p in parts):
            raise ValueError(f"add takes a batch: obs (n, {self.obs.shape[1]}) and actions, rewards, "
                             f"next_obs, terminated of length n; got obs {obs.shape} and lengths "
                             f"{[len(p) for p in parts]}")
        if n > self.capacity:
            raise ValueError(f"a batch of {n} transitions does not fit a buffer of {self.capacity}")
        slots = (self.position + np.arange(n)) % self.capacity
        self.obs[slots] = obs
        self.actions[slots], self.rewards[slots] = parts[0], parts[1]
        self.next_obs[slots], self.terminated[slots] = parts[2], parts[3]
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, n_batches: int = 1) -> tuple[np.ndarray, ...]:
        """``n_batches`` minibatches, each array shaped ``(n_batches, batch_size, ...)``."""
        batch_size = _check_int("batch_size", batch_size, 1)
        n_batches = _check_int("n_batches", n_batches, 1)
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        i = self.rng.integers(0, self.size, size=(n_batches, batch_size))
        return (self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i],
                self.terminated[i])


# --------------------------------------------------------------------------- networks, acting


def mlp(n_outputs: int, hidden: Sequence[int], seed: int, name: str = "mlp",
        n_inputs: int = OBS_DIM) -> keras.Model:
    """A small ReLU MLP from observations to ``n_outputs`` (logits, action values or a value).

    Layer ``i`` is initialised from ``seed + i``. Taught in chapter 18.
    """
    n_outputs = _check_int("n_outputs", n_outputs, 1)
    seed = _check_seed(seed)
    hidden = [_check_int("hidden width", h, 1) for h in hidden]
    inputs = keras.Input((n_inputs,), name="observation")
    x = inputs
    for i, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation="relu", name=f"hidden_{i}",
                               kernel_initializer=keras.initializers.GlorotUniform(seed + i))(x)
    outputs = keras.layers.Dense(
        n_outputs, name="out",
        kernel_initializer=keras.initializers.GlorotUniform(seed + len(hidden)))(x)
    return keras.Model(inputs, outputs, name=name)


def numpy_forward(weights: Sequence[np.ndarray], x) -> np.ndarray:
    """The forward pass of an :func:`mlp` in NumPy, from ``model.get_weights()``.

    Acting needs one forward pass per environment step on a handful of observations; a Keras call
    costs far more than the arithmetic at that size, a NumPy matmul does not. Taught in chapter 18.
    """
    if len(weights) % 2 or not weights:
        raise ValueError(f"weights must be kernel, bias pairs, got {len(weights)} arrays")
    h = np.asarray(x, "float32")
    for i in range(0, len(weights), 2):
        h = h @ weights[i] + weights[i + 1]
        if i + 2 < len(weights):
            h = np.maximum(h, 0.0)
    return h


def sample_from_logits(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row, drawn from the softmax of ``logits`` with ``rng``. Taught in chapter 18."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(len(p))[:, None]
    return np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), p.shape[1] - 1)


def make_vector_env(num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` CartPoles stepped together by gymnasium's NumPy-vectorised CartPole.

    Its autoreset is *next-step*: the step after an episode ends resets that copy and returns the
    new first observation with reward 0 (the action is ignored); the step that ends an episode
    returns its real final observation. Taught in chapter 18.
    """
    num_envs = _check_int("num_envs", num_envs, 1)
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")


@dataclass
class Episodes:
    """Whole episodes played side by side: ``returns`` ``(N,)`` and ``truncated`` ``(N,)`` (the
    episode hit the time limit without terminating), and, when recorded, time-major ``obs``
    ``(T, N, 4)``, ``actions`` and ``rewards`` ``(T, N)``, ``alive`` (the step belongs to the
    episode) and ``final_obs`` ``(N, 4)``, the observation each episode ended on."""

    returns: np.ndarray
    truncated: np.ndarray
    obs: np.ndarray | None = None
    actions: np.ndarray | None = None
    rewards: np.ndarray | None = None
    alive: np.ndarray | None = None
    final_obs: np.ndarray | None = None


def run_episodes(act: Callable[[np.ndarray], np.ndarray], n_episodes: int, seed: int,
                 record: bool = False, env: gym.vector.VectorEnv | None = None) -> Episodes:
    """Play ``n_episodes`` CartPole episodes at once, one per vectorised copy, seeded by ``seed``.

    ``act`` maps a batch of observations ``(n, 4)`` to actions ``(n,)``. Each episode counts until
    it terminates or reaches the 500-step limit; later steps of its copy are ignored. With
    ``record`` the trajectories come back too (for REINFORCE), with the observation each episode
    ended on (to bootstrap a truncated one). Pass an ``env`` of ``n_episodes`` copies to reuse it.
    Taught in chapter 18.
    """
    n_episodes = _check_int("n_episodes", n_episodes, 1)
    own = env is None
    env = make_vector_env(n_episodes) if own else env
    if env.num_envs != n_episodes:
        raise ValueError(f"env has {env.num_envs} copies, n_episodes is {n_episodes}")
    obs, _ = env.reset(seed=_check_seed(seed))
    alive = np.ones(n_episodes, bool)
    returns = np.zeros(n_episodes)
    cut = np.zeros(n_episodes, bool)
    final_obs = np.zeros_like(obs)
    trace: list[tuple] = []
    while alive.any():
        actions = np.asarray(act(obs))
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        if record:
            trace.append((obs, actions, rewards * alive, alive.copy()))
        returns += rewards * alive
        ending = alive & (terminated | truncated)
        final_obs[ending] = next_obs[ending]
        cut[ending] = truncated[ending] & ~terminated[ending]
        alive &= ~ending
        obs = next_obs
    if own:
        env.close()
    if not record:
        return Episodes(returns, cut)
    o, a, r, m = (np.stack(x) for x in zip(*trace, strict=True))
    return Episodes(returns, cut, o, a, r, m, final_obs)


# --------------------------------------------------------------------------- compiled updates


def policy_gradient_update(policy: keras.Model, value: keras.Model,
                           optimizer: keras.optimizers.Optimizer, value_coef: float = 0.5,
                           entropy_coef: float = 0.0) -> Callable:
    """A compiled step that minimises the policy-gradient loss of REINFORCE/A2C on a batch.

    ``update(obs, actions, advantages, value_targets)`` takes one gradient step on
    :math:`-\\overline{A_t \\log \\pi(a_t \\mid s_t)}
    + c_v\\, \\overline{(V(s_t) - \\hat G_t)^2} - c_H\\, \\overline{H[\\pi(\\cdot \\mid s_t)]}`
    over the policy's and the value network's weights (the advantages are constants: no gradient
    flows through them) and returns the three terms. Taught in chapter 18.
    """
    variables = policy.trainable_variables + value.trainable_variables
    spec = [tf.TensorSpec((None, OBS_DIM), tf.float32), tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.float32), tf.TensorSpec((None,), tf.float32)]

    @tf.function(input_signature=spec)
    def update(obs, actions, advantages, value_targets):
        with tf.GradientTape() as tape:
            logits = policy(obs, training=True)
            log_probs = tf.nn.log_softmax(logits)
            chosen = tf.gather(log_probs, actions, batch_dims=1)
            policy_loss = -tf.reduce_mean(chosen * advantages)
            values = tf.squeeze(value(obs, training=True), axis=1)
            value_loss = tf.reduce_mean(tf.square(values - value_targets))
            spread = -tf.reduce_mean(tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=1))
            loss = policy_loss + value_coef * value_loss - entropy_coef * spread
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return policy_loss, value_loss, spread

    return update


def dqn_update(q: keras.Model, q_target: keras.Model, optimizer: keras.optimizers.Optimizer,
               gamma: float) -> Callable:
    """A compiled step that runs ``K`` DQN gradient steps, one per minibatch of a ``(K, B, …)`` stack.

    Each step regresses :math:`Q(s, a)` on :func:`bellman_targets` from the frozen target network
    with the Huber loss; one call does all ``K`` steps in a ``tf.while_loop``, so Python is entered
    once per ``K`` updates. Returns the last minibatch's loss. Taught in chapter 18.
    """
    gamma = _check_gamma("gamma", gamma)
    huber = keras.losses.Huber()
    spec = [tf.TensorSpec((None, None, OBS_DIM), tf.float32),
            tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None, None), tf.float32),
            tf.TensorSpec((None, None, OBS_DIM), tf.float32),
            tf.TensorSpec((None, None), tf.float32)]

    @tf.function(input_signature=spec)
    def update(obs, actions, rewards, next_obs, terminated):
        loss = tf.constant(0.0)
        for k in tf.range(tf.shape(obs)[0]):
            targets = bellman_targets(rewards[k], q_target(next_obs[k]), terminated[k], gamma)
            with tf.GradientTape() as tape:
                chosen = tf.gather(q(obs[k], training=True), actions[k], batch_dims=1)
                loss = huber(tf.stop_gradient(targets), chosen)
            grads = tape.gradient(loss, q.trainable_variables)
            optimizer.apply_gradients(zip(grads, q.trainable_variables, strict=True))
        return loss

    return update


# --------------------------------------------------------------------------- training loops


def _value_scale(value_scale, gamma: float) -> float:
    if value_scale is None:
        if gamma == 1.0:
            raise ValueError("value_scale must be given when gamma is 1 (the default is 1 - gamma)")
        return 1.0 - gamma
    if isinstance(value_scale, bool) or not isinstance(value_scale, Real) or value_scale <= 0:
        raise ValueError(f"value_scale must be a positive number, got {value_scale!r}")
    return float(value_scale)


@dataclass
class TrainingRun:
    """What a training loop returns: the trained ``model`` (policy logits or action values), the
    return of every training episode and the environment steps taken when it ended; for the
    policy-gradient agents also the ``critic`` (value network) and its ``value_scale`` (the critic
    outputs ``value_scale`` × the return)."""

    model: keras.Model
    episode_returns: list = field(default_factory=list)
    episode_end_steps: list = field(default_factory=list)
    critic: keras.Model | None = None
    value_scale: float = 1.0

    @property
    def env_steps(self) -> int:
        """The environment steps taken when the last training episode ended."""
        return int(self.episode_end_steps[-1]) if self.episode_end_steps else 0

    def greedy(self) -> Callable[[np.ndarray], np.ndarray]:
        """The greedy policy ``argmax`` of the model's outputs, acted in NumPy."""
        weights = self.model.get_weights()
        return lambda obs: numpy_forward(weights, obs).argmax(axis=1)

    def record(self, episode_return: np.ndarray, rewards, done, steps: int) -> np.ndarray:
        """One vector step of bookkeeping: add ``rewards`` to each copy's running
        ``episode_return`` (in place), log the copies whose episode ended (``done``) at ``steps``,
        and restart their sums. Returns ``done``: the copies whose next step is a reset."""
        episode_return += rewards
        for i in np.flatnonzero(done):
            self.episode_returns.append(float(episode_return[i]))
            self.episode_end_steps.append(steps)
        episode_return[done] = 0.0
        return done

    def values(self, obs) -> np.ndarray:
        """The critic's value estimates of ``obs`` ``(n, 4)``, in return units."""
        if self.critic is None:
            raise ValueError("this run has no critic (value network)")
        return numpy_forward(self.critic.get_weights(), obs)[:, 0] / self.value_scale


def reinforce_returns(episodes: Episodes, gamma: float, final_values=None) -> np.ndarray:
    """The reward-to-go :math:`G_t` of every step of recorded ``episodes`` ``(T, N)``.

    An episode that *terminated* stops at its last step. One cut by the time limit (``truncated``)
    had a future: with ``final_values`` ``(N,)`` (the value of each episode's final observation)
    its last reward is bootstrapped, :math:`r_{T-1} + \\gamma V(s_T)`, as the chapter's rule for
    truncation asks. Steps after an episode's end have return 0. Taught in chapter 18.
    """
    if episodes.rewards is None:
        raise ValueError("episodes must be recorded (run_episodes(..., record=True))")
    rewards = np.array(episodes.rewards, dtype="float64")
    if final_values is not None:
        final_values = np.asarray(final_values, dtype="float64")
        if final_values.shape != episodes.truncated.shape:
            raise ValueError(f"final_values must be ({len(episodes.truncated)},), got shape "
                             f"{final_values.shape}")
        last = episodes.alive.sum(axis=0) - 1
        cut = np.flatnonzero(episodes.truncated)
        rewards[last[cut], cut] += gamma * final_values[cut]
    return discounted_returns(rewards, gamma) * episodes.alive


def train_reinforce(seed: int, iterations: int, episodes_per_iteration: int = 16,
                    gamma: float = 0.99, hidden: Sequence[int] = (32,),
                    learning_rate: float = 0.01, baseline: bool = True,
                    value_scale: float | None = None) -> TrainingRun:
    """REINFORCE with a learned baseline: play whole episodes, weight each log-probability by the
    reward-to-go minus the value network's estimate, and take one step per batch of episodes.

    The advantages are standardised within each batch (a common rescaling that fixes the step size
    whatever the returns' scale). The value network regresses ``value_scale`` × the return
    (default :math:`1 - \\gamma`, so its targets lie in [0, 1]): Adam moves each weight by about the
    learning rate per step whatever the loss's scale, and a network that had to output returns of
    ~100 would need hundreds of steps to get there. A time-limit truncation bootstraps from the
    critic (:func:`reinforce_returns`). With ``baseline=False`` the weights are the returns divided
    by their batch standard deviation, not centred: REINFORCE without a baseline (the critic is
    still trained, for comparison, but not used). Taught in chapter 18.
    """
    seed = _check_seed(seed)
    iterations = _check_int("iterations", iterations, 1)
    n = _check_int("episodes_per_iteration", episodes_per_iteration, 1)
    gamma = _check_gamma("gamma", gamma)
    scale = _value_scale(value_scale, gamma)
    policy = mlp(N_ACTIONS, hidden, seed, "policy")
    value = mlp(1, hidden, seed + 100, "value")
    update = policy_gradient_update(policy, value, keras.optimizers.Adam(learning_rate))
    rng = np.random.default_rng(seed)
    env = make_vector_env(n)
    run = TrainingRun(policy, critic=value, value_scale=scale)
    steps = 0
    for it in range(iterations):
        weights = policy.get_weights()
        episodes = run_episodes(lambda o, w=weights: sample_from_logits(numpy_forward(w, o), rng),
                                n, seed + 1 + it * n, record=True, env=env)
        returns = reinforce_returns(episodes, gamma, run.values(episodes.final_obs))
        mask = episodes.alive
        obs, actions, returns = episodes.obs[mask], episodes.actions[mask], returns[mask]
        if baseline:
            advantages = returns - run.values(obs)
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        else:
            advantages = returns / (returns.std() + 1e-8)
        update(obs, actions.astype("int32"), advantages.astype("float32"),
               (scale * returns).astype("float32"))
        for r in episodes.returns:
            steps += int(r)
            run.episode_returns.append(float(r))
            run.episode_end_steps.append(steps)
    env.close()
    return run


def policy_gradient_variance(run: TrainingRun, n_episodes: int, seed: int,
                             gamma: float = 0.99) -> tuple[float, float]:
    """How much the critic's baseline reduces the variance of the policy-gradient estimate.

    Plays ``n_episodes`` episodes with ``run``'s stochastic policy and computes, in one compiled
    call (a Jacobian), each episode's gradient estimate
    :math:`\\sum_t \\nabla_\\theta \\log \\pi(a_t \\mid s_t)\\, w_t` with :math:`w_t = G_t` (no baseline)
    and :math:`w_t = G_t - V(s_t)` (the critic's baseline). Returns the total variance of the
    per-episode estimates over episodes (the mean squared distance to their mean) for each:
    ``(without, with)``. Both estimate the same gradient; the baseline only changes the noise.
    Taught in chapter 18.
    """
    n_episodes = _check_int("n_episodes", n_episodes, 2)
    gamma = _check_gamma("gamma", gamma)
    policy = run.model
    weights = policy.get_weights()
    rng = np.random.default_rng(_check_seed(seed))
    episodes = run_episodes(lambda o: sample_from_logits(numpy_forward(weights, o), rng),
                            n_episodes, seed, record=True)
    returns = reinforce_returns(episodes, gamma, run.values(episodes.final_obs))
    mask = episodes.alive
    obs = episodes.obs[mask].astype("float32")
    episode_of = np.broadcast_to(np.arange(n_episodes), mask.shape)[mask].astype("int32")
    returns = returns[mask]
    weights_of = np.stack([returns, returns - run.values(obs)]).astype("float32")

    @tf.function
    def per_episode(obs, actions, episode_of, w):
        with tf.GradientTape() as tape:
            chosen = tf.gather(tf.nn.log_softmax(policy(obs)), actions, batch_dims=1)
            sums = tf.math.unsorted_segment_sum(chosen[None, :] * w, episode_of[None, :]
                                                + n_episodes * tf.range(2)[:, None], 2 * n_episodes)
        jac = tape.jacobian(sums, policy.trainable_variables)
        return tf.concat([tf.reshape(j, (2 * n_episodes, -1)) for j in jac], axis=1)

    grads = per_episode(obs, episodes.actions[mask].astype("int32"), episode_of, weights_of)
    grads = np.asarray(grads, dtype="float64").reshape(2, n_episodes, -1)
    spread = ((grads - grads.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1)
    return float(spread[0]), float(spread[1])


def train_a2c(seed: int, updates: int, num_envs: int = 16, rollout: int = 16,
              gamma: float = 0.99, lam: float = 0.95, hidden: Sequence[int] = (32,),
              learning_rate: float = 0.005, entropy_coef: float = 0.01,
              normalise: bool = True, value_scale: float | None = None) -> TrainingRun:
    """Advantage actor-critic (synchronous, A2C): ``num_envs`` copies run ``rollout`` steps, the
    critic's values give GAE advantages (:func:`gae_advantages`), then one compiled update.

    The steps that only reset a copy (next-step autoreset) are left out of the batch. The critic
    regresses ``value_scale`` × the value target (default :math:`1 - \\gamma`, as in
    :func:`train_reinforce`). Taught in chapter 18.
    """
    seed = _check_seed(seed)
    gamma = _check_gamma("gamma", gamma)
    scale = _value_scale(value_scale, gamma)
    updates = _check_int("updates", updates, 1)
    num_envs = _check_int("num_envs", num_envs, 1)
    rollout = _check_int("rollout", rollout, 1)
    policy = mlp(N_ACTIONS, hidden, seed, "policy")
    value = mlp(1, hidden, seed + 100, "value")
    update = policy_gradient_update(policy, value, keras.optimizers.Adam(learning_rate),
                                    entropy_coef=entropy_coef)
    rng = np.random.default_rng(seed)
    env = make_vector_env(num_envs)
    obs, _ = env.reset(seed=seed + 1)
    run = TrainingRun(policy, critic=value, value_scale=scale)
    episode_return = np.zeros(num_envs)
    was_done = np.zeros(num_envs, bool)
    steps = 0
    shape = (rollout, num_envs)
    for _ in range(updates):
        pw, vw = policy.get_weights(), value.get_weights()
        o = np.zeros(shape + (OBS_DIM,), "float32")
        o_next = np.zeros_like(o)
        a = np.zeros(shape, "int32")
        r, term, trunc, valid = (np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, bool),
                                 np.zeros(shape, bool))
        for t in range(rollout):
            actions = sample_from_logits(numpy_forward(pw, obs), rng)
            next_obs, rewards, terminated, truncated, _ = env.step(actions)
            o[t], a[t], r[t], o_next[t] = obs, actions, rewards, next_obs
            term[t], trunc[t], valid[t] = terminated, truncated, ~was_done
            steps += int((~was_done).sum())
            was_done = run.record(episode_return, rewards, terminated | truncated, steps)
            obs = next_obs
        values = numpy_forward(vw, o.reshape(-1, OBS_DIM))[:, 0].reshape(shape) / scale
        next_values = numpy_forward(vw, o_next.reshape(-1, OBS_DIM))[:, 0].reshape(shape) / scale
        adv, targets = gae_advantages(r, values, next_values, term, trunc, gamma, lam)
        adv = adv[valid]
        if normalise:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        update(o[valid], a[valid], adv.astype("float32"),
               (scale * targets[valid]).astype("float32"))
    env.close()
    return run


def train_dqn(seed: int, env_steps: int, num_envs: int = 4, burst: int = 32,
              updates_per_burst: int = 32, batch_size: int = 64, gamma: float = 0.99,
              hidden: Sequence[int] = (64, 64), learning_rate: float = 0.001,
              buffer_size: int = 20_000, warmup: int = 1_000, target_every: int = 250,
              epsilon: tuple[float, float, float] = (1.0, 0.05, 0.4)) -> TrainingRun:
    """DQN: ε-greedy acting on ``num_envs`` copies into a :class:`ReplayBuffer`; every ``burst``
    vector steps, ``updates_per_burst`` compiled gradient steps on replayed minibatches
    (:func:`dqn_update`); the target network copies the online one every ``target_every`` updates.

    ``epsilon = (start, end, fraction)``: ε falls linearly from ``start`` to ``end`` over the first
    ``fraction`` of the environment steps. Acting uses the online weights of the last burst.
    A time-limit truncation is stored as not terminal (its target bootstraps). Taught in
    chapter 18.
    """
    seed = _check_seed(seed)
    env_steps = _check_int("env_steps", env_steps, 1)
    num_envs = _check_int("num_envs", num_envs, 1)
    burst = _check_int("burst", burst, 1)
    updates_per_burst = _check_int("updates_per_burst", updates_per_burst, 1)
    start, end, fraction = epsilon
    if not (0 <= end <= start <= 1 and 0 < fraction <= 1):
        raise ValueError(f"epsilon must be (start, end, fraction) with 0 <= end <= start <= 1 "
                         f"and 0 < fraction <= 1, got {epsilon!r}")
    q = mlp(N_ACTIONS, hidden, seed, "q")
    q_target = mlp(N_ACTIONS, hidden, seed, "q_target")
    q_target.set_weights(q.get_weights())
    update = dqn_update(q, q_target, keras.optimizers.Adam(learning_rate), gamma)
    buffer = ReplayBuffer(buffer_size, OBS_DIM, seed + 1)
    rng = np.random.default_rng(seed + 2)
    env = make_vector_env(num_envs)
    obs, _ = env.reset(seed=seed + 3)
    run = TrainingRun(q)
    episode_return = np.zeros(num_envs)
    was_done = np.zeros(num_envs, bool)
    steps, n_updates, since_target = 0, 0, 0
    weights = q.get_weights()
    while steps < env_steps:
        for _ in range(burst):
            eps = start + (end - start) * min(1.0, steps / (fraction * env_steps))
            greedy = numpy_forward(weights, obs).argmax(axis=1)
            explore = rng.random(num_envs) < eps
            actions = np.where(explore, rng.integers(0, N_ACTIONS, num_envs), greedy)
            next_obs, rewards, terminated, truncated, _ = env.step(actions)
            keep = ~was_done
            buffer.add(obs[keep], actions[keep], rewards[keep], next_obs[keep], terminated[keep])
            steps += int(keep.sum())
            was_done = run.record(episode_return, rewards, terminated | truncated, steps)
            obs = next_obs
        if len(buffer) >= warmup:
            update(*buffer.sample(batch_size, updates_per_burst))
            n_updates += updates_per_burst
            since_target += updates_per_burst
            if since_target >= target_every:
                q_target.set_weights(q.get_weights())
                since_target = 0
            weights = q.get_weights()
    env.close()
    return run


def learning_curve(run: TrainingRun, grid, window: int = 20) -> np.ndarray:
    """The mean return of the last ``window`` training episodes that ended by each step count in
    ``grid`` (NaN before the first episode ends), so runs of different lengths share an x-axis.
    Taught in chapter 18.
    """
    window = _check_int("window", window, 1)
    ends = np.asarray(run.episode_end_steps)
    returns = np.asarray(run.episode_returns, dtype="float64")
    counts = np.searchsorted(ends, np.asarray(grid), side="right")
    return np.array([returns[max(0, c - window):c].mean() if c else np.nan for c in counts])
