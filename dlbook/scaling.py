"""Scaling up: devices, data parallelism on one machine and across processes, precision, memory.

- :func:`virtual_cpus` splits the CPU into logical devices, so that a laptop can run the same
  ``tf.distribute`` code a machine with several GPUs runs.
- :func:`matmul_gflops` and :func:`peak_memory` measure what an accelerator changes: arithmetic
  throughput, and the memory one step needs.
- :func:`build_digit_mlp`, :func:`train_data_parallel` and :func:`replica_gradients`: synchronous
  data parallelism with a custom training loop, the same code on one device, on several and on
  several worker processes.
- :func:`free_ports`, :func:`port_is_free`, :func:`tf_config`, :func:`worker_environment`,
  :func:`run_workers` and :func:`train_multi_worker`: real multi-worker training with
  ``tf.distribute.MultiWorkerMirroredStrategy`` on localhost; the worker program is this module
  run as ``python -m dlbook.scaling`` (:func:`worker_main`).
- :func:`float16_underflow`: what storing small numbers in float16 does to them.
- :func:`make_train_step`: a compiled training step, with or without XLA; :func:`time_examples`
  and :func:`consume` time it, and an input pipeline, in wall-clock and CPU time.

Taught in chapter 17.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from dlbook.checks import check_int as _check_int

LOOPBACK = "127.0.0.1"
FLOAT16_SMALLEST_SUBNORMAL = 2.0**-24  # the smallest positive float16; half of it rounds to 0
LOG_TAIL_LINES = 15


def _check_positive(argument: str, value) -> float:
    if (isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
            or value <= 0):
        raise ValueError(f"{argument} must be a positive finite number, got {value!r}")
    return float(value)


# --- devices ---------------------------------------------------------------------------------


def virtual_cpus(count: int = 2) -> list[str]:
    """Split the first physical CPU into ``count`` logical devices; return their names.

    TensorFlow fixes its devices the first time an op runs, so call this before anything creates
    a tensor: right after ``repro.setup()``, which seeds and configures TensorFlow without running
    an op. Calling it again with the same ``count`` changes nothing (re-running a notebook cell
    is safe); asking for another split once TensorFlow has started raises an error that says so.
    The logical devices share the same cores: they let ``tf.distribute`` code run unchanged on one
    CPU, not faster. Taught in chapter 17.
    """
    count = _check_int("count", count, 1)
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is None or len(current) != count:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
        except RuntimeError as error:
            have = len(tf.config.list_logical_devices("CPU"))
            raise RuntimeError(
                f"cannot split the CPU into {count} logical devices: TensorFlow has already "
                f"started with {have} (an op ran, e.g. a tensor or a model was created). Call "
                "virtual_cpus() right after repro.setup(), before anything else touches "
                "TensorFlow; in Jupyter, restart the kernel") from error
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def matmul_gflops(size: int, device: str = "CPU:0", dtype: str = "float32",
                  repeats: int | None = None, trials: int = 3) -> float:
    """Measured speed of a ``size`` x ``size`` matrix product on ``device``, in GFLOP/s.

    One product costs ``2 size**3`` floating-point operations. Each trial times ``repeats``
    products (by default enough for about 0.1 GFLOP, 3 to 2,000 of them) and waits for the last
    result, since an accelerator runs asynchronously; the best trial counts, being the least
    disturbed by other work on the machine. Taught in chapter 17.
    """
    size = _check_int("size", size, 1)
    if repeats is None:
        repeats = min(2000, max(3, int(1e8 / (2 * size**3))))
    repeats = _check_int("repeats", repeats, 1)
    trials = _check_int("trials", trials, 1)
    import tensorflow as tf

    with tf.device(device):
        a = tf.fill((size, size), tf.constant(0.5, dtype))
        b = tf.fill((size, size), tf.constant(0.25, dtype))
        float(tf.reduce_sum(tf.matmul(a, b)))  # warm-up: kernels chosen, memory allocated
        best = math.inf
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(repeats):
                product = tf.matmul(a, b)
            float(product[0, 0])  # wait for the device
            best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * repeats / best / 1e9


def peak_memory(function: Callable, *args, device: str = "CPU:0") -> int:
    """Bytes TensorFlow's allocator on ``device`` held at its peak during ``function(*args)``,
    above what it held before the call.

    Call ``function`` once beforehand if it is a ``tf.function``, so that tracing is not counted.
    Taught in chapter 17.
    """
    if not callable(function):
        raise ValueError(f"function must be callable, got {type(function).__name__}")
    import tensorflow as tf

    tf.config.experimental.reset_memory_stats(device)
    before = tf.config.experimental.get_memory_info(device)["current"]
    result = function(*args)
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)  # wait
    return int(tf.config.experimental.get_memory_info(device)["peak"] - before)


# --- data parallelism ----------------------------------------------------------------------------


def build_digit_mlp(seed: int, hidden: int = 32, inputs: int = 64, classes: int = 10,
                    name: str = "digit_mlp"):
    """``inputs -> hidden (relu) -> logits``: the small classifier of chapter 17's experiments.

    Its initial weights depend only on ``seed``, so every replica, process and rerun starts from
    the same point. It returns logits (train with ``from_logits=True``). Taught in chapter 17.
    """
    seed = _check_int("seed", seed, 0)
    hidden = _check_int("hidden", hidden, 1)
    inputs = _check_int("inputs", inputs, 1)
    classes = _check_int("classes", classes, 2)
    import keras

    return keras.Sequential([
        keras.Input((inputs,), name="pixels"),
        keras.layers.Dense(hidden, activation="relu", name="hidden",
                           kernel_initializer=keras.initializers.GlorotUniform(seed)),
        keras.layers.Dense(classes, name="logits",
                           kernel_initializer=keras.initializers.GlorotUniform(seed + 1)),
    ], name=name)


@dataclass(frozen=True)
class TrainingRun:
    """What :func:`train_data_parallel` returns: the final weights, the global loss of every step,
    and the indices of the examples this process fed to its replicas, in order."""

    weights: list
    losses: np.ndarray
    seen: np.ndarray


def train_data_parallel(strategy, x, y, *, global_batch: int, epochs: int, learning_rate: float,
                        seed: int, hidden: int = 32) -> TrainingRun:
    """Train :func:`build_digit_mlp` with SGD under ``strategy``: synchronous data parallelism.

    Every step takes the next ``global_batch`` examples (in an order drawn from ``seed`` alone,
    a new one each epoch, so that every process computes the same) and
    splits them evenly over the replicas of ``strategy`` — the devices of one machine
    (``MirroredStrategy``) or of several processes (``MultiWorkerMirroredStrategy``, which gives
    each worker its share of every batch). Each replica divides its summed loss by the *global*
    batch size, so that the optimizer's sum of the replicas' gradients is the gradient of the
    mean loss over the global batch: the step one device would take on the whole batch.
    Taught in chapter 17.
    """
    import keras
    import tensorflow as tf

    x, y = np.asarray(x, dtype="float32"), np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (examples, features) and y (examples,), got {x.shape} and "
                         f"{y.shape}")
    global_batch = _check_int("global_batch", global_batch, 1)
    epochs = _check_int("epochs", epochs, 1)
    learning_rate = _check_positive("learning_rate", learning_rate)
    replicas = strategy.num_replicas_in_sync
    if len(x) % global_batch or global_batch % replicas:
        raise ValueError(f"{len(x)} examples must split into whole global batches of "
                         f"{global_batch}, and each batch evenly over {replicas} replicas; a "
                         "smaller last batch would give the replicas unequal shares")

    options = tf.data.Options()
    # Every worker reads the whole (small) dataset and keeps its share of each batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # The order of every epoch comes from ``seed`` alone (NumPy, not ``Dataset.shuffle``, whose
    # order also depends on TensorFlow's global seed), so every process computes the same one.
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(epochs)])
    dataset = (tf.data.Dataset.from_tensor_slices((order, x[order], y[order]))
               .batch(global_batch)
               .with_options(options))
    with strategy.scope():
        model = build_digit_mlp(seed, hidden=hidden, inputs=x.shape[1])
        optimizer = keras.optimizers.SGD(learning_rate)
    per_example_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  reduction=None)

    def replica_step(features, labels):
        with tf.GradientTape() as tape:
            losses = per_example_loss(labels, model(features, training=True))
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
        gradients = tape.gradient(loss, model.trainable_variables)
        # Keras optimizers sum the replicas' gradients before they apply them.
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def train_step(features, labels):
        losses = strategy.run(replica_step, args=(features, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    step_losses, seen = [], []
    for indices, features, labels in strategy.experimental_distribute_dataset(dataset):
        step_losses.append(float(train_step(features, labels)))
        seen.extend(np.concatenate([np.asarray(part) for part in
                                    strategy.experimental_local_results(indices)]))
    return TrainingRun([np.asarray(w) for w in model.get_weights()], np.array(step_losses),
                       np.array(seen))


def replica_gradients(strategy, model, x, y, replica_loss: Callable) -> list[np.ndarray]:
    """The gradient an optimizer would apply after one global batch ``(x, y)`` under ``strategy``.

    The batch is split over the replicas; each replica turns its per-example losses into one
    number with ``replica_loss`` (e.g. ``tf.reduce_mean``, or ``tf.nn.compute_average_loss``
    with the global batch size), differentiates it, and the replicas' gradients are summed, as
    Keras optimizers do under a ``tf.distribute`` strategy. ``model`` must have been built in
    ``strategy.scope()`` and return logits. Taught in chapter 17.
    """
    if not callable(replica_loss):
        raise ValueError(f"replica_loss must be callable, got {type(replica_loss).__name__}")
    import keras
    import tensorflow as tf

    per_example_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  reduction=None)
    batch = tf.data.Dataset.from_tensor_slices((np.asarray(x, "float32"), y)).batch(len(x))
    features, labels = next(iter(strategy.experimental_distribute_dataset(batch)))

    def replica(features, labels):
        with tf.GradientTape() as tape:
            loss = replica_loss(per_example_loss(labels, model(features, training=True)))
        gradients = tape.gradient(loss, model.trainable_variables)
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                              gradients)

    summed = tf.function(lambda *batch: strategy.run(replica, args=batch))(features, labels)
    return [np.asarray(strategy.experimental_local_results(g)[0]) for g in summed]


# --- multi-worker training -----------------------------------------------------------------------


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct TCP ports on ``host`` that nothing listens on right now.

    The operating system picks each (bind to port 0); all sockets stay open until every port is
    picked, so the ports differ, and are then closed for the workers to bind. Another program
    could take one in between; on a cluster the scheduler hands out ports instead.
    Taught in chapter 17.
    """
    count = _check_int("count", count, 1)
    sockets = []
    try:
        for _ in range(count):
            candidate = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(candidate)
            candidate.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could listen on ``port`` now (no process holds it). Taught in chapter 17."""
    port = _check_int("port", port, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore closed connections
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def tf_config(addresses: Sequence[str], index: int) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of workers at ``addresses``.

    ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}``:
    every worker gets the same cluster and its own index; worker 0 is the chief (by convention
    the one that writes checkpoints and logs). Set it, as JSON, in the environment of each worker
    before it creates its ``MultiWorkerMirroredStrategy``. Taught in chapter 17.
    """
    if isinstance(addresses, str) or not isinstance(addresses, Sequence) or not addresses:
        raise ValueError(f"addresses must be a non-empty list of 'host:port', got {addresses!r}")
    for address in addresses:
        host, _, port = str(address).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"each address must be 'host:port' with a port in 1–65535, "
                             f"got {address!r}")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"addresses must be distinct, got {list(addresses)}")
    if isinstance(index, bool) or not isinstance(index, Integral) or not 0 <= index < len(addresses):
        raise ValueError(f"index must be an int in 0…{len(addresses) - 1}, got {index!r}")
    return {"cluster": {"worker": [str(a) for a in addresses]},
            "task": {"type": "worker", "index": int(index)}}


class WorkerError(RuntimeError):
    """A worker process failed or ran out of time; every worker has been stopped."""


@dataclass(frozen=True)
class WorkerProcesses:
    """What :func:`run_workers` ran: the process ids, each worker's output, the wall time."""

    pids: tuple[int, ...]
    logs: tuple[str, ...]
    seconds: float


def _log_tail(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _stop(processes: Sequence[subprocess.Popen], grace: float = 5.0) -> None:
    """Terminate every process still running, kill those that ignore it, and reap them all."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_workers(commands: Sequence[Sequence[str]], *, timeout: float, log_dir,
                envs: Sequence[Mapping[str, str]] | None = None,
                poll: float = 0.05) -> WorkerProcesses:
    """Start one process per command, wait until all have finished, and always stop them.

    If a process exits with an error, or ``timeout`` seconds pass before all have finished, every
    process still running is terminated (then killed) and :class:`WorkerError` says which one
    failed and how, with the end of its output. On success, and on any error or interrupt, no
    process is left behind when this returns. Each process writes its output (stdout and stderr)
    to ``worker-<i>.log`` in ``log_dir``. Taught in chapter 17.
    """
    if isinstance(commands, str) or not isinstance(commands, Sequence) or not commands:
        raise ValueError("commands must be a non-empty list of commands (lists of strings)")
    for command in commands:
        if (isinstance(command, str) or not isinstance(command, Sequence) or not command
                or not all(isinstance(part, str) for part in command)):
            raise ValueError(f"each command must be a non-empty list of strings, got {command!r}")
    timeout = _check_positive("timeout", timeout)
    poll = _check_positive("poll", poll)
    if envs is not None and len(envs) != len(commands):
        raise ValueError(f"envs must give one environment per command: {len(commands)} "
                         f"commands, {len(envs)} environments")
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        raise ValueError(f"log_dir must be an existing folder, got {str(log_dir)!r}")

    logs = [log_dir / f"worker-{i}.log" for i in range(len(commands))]
    processes: list[subprocess.Popen] = []
    start = time.monotonic()
    try:
        for i, command in enumerate(commands):
            with open(logs[i], "wb") as log:
                processes.append(subprocess.Popen(
                    list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=None if envs is None else dict(envs[i])))
        while True:
            codes = [p.poll() for p in processes]
            failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                i = failed[0]
                raise WorkerError(f"worker {i} exited with code {codes[i]}; the others were "
                                  f"stopped. The end of its output:\n{_log_tail(logs[i])}")
            if all(code == 0 for code in codes):
                break
            if time.monotonic() - start > timeout:
                running = [i for i, code in enumerate(codes) if code is None]
                raise WorkerError(f"the workers ran past the timeout of {timeout:g} s; workers "
                                  f"{running} were still running and have been stopped. The end "
                                  f"of worker {running[0]}'s output:\n{_log_tail(logs[running[0]])}")
            time.sleep(poll)
    finally:
        _stop(processes)
    return WorkerProcesses(tuple(p.pid for p in processes),
                           tuple(log.read_text(encoding="utf-8", errors="replace") for log in logs),
                           time.monotonic() - start)


def worker_environment(config: dict, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker process: ``base`` (default: this process's) plus its
    ``TF_CONFIG``, one compute thread (the workers of the demo share this machine's cores), quiet
    logs, and no GPU (two workers on one machine would share it). Taught in chapter 17.
    """
    env = dict(os.environ if base is None else base)
    for variable in ("DLBOOK_SEED", "DLBOOK_MEASURES"):  # the worker gets its seed explicitly
        env.pop(variable, None)
    env.update({"TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3",
                "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "2",
                "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
    return env


@dataclass(frozen=True)
class MultiWorkerRun:
    """What :func:`train_multi_worker` returns: each worker's :class:`TrainingRun`, the addresses
    the workers listened on, their process ids and the wall time of the whole run."""

    runs: list[TrainingRun]
    addresses: list[str]
    pids: tuple[int, ...]
    seconds: float


def train_multi_worker(x, y, *, workers: int = 2, global_batch: int, epochs: int,
                       learning_rate: float, seed: int, timeout: float = 120.0) -> MultiWorkerRun:
    """Run :func:`train_data_parallel` under ``MultiWorkerMirroredStrategy`` in ``workers``
    processes on this machine, talking gRPC over loopback ports chosen now; return their results.

    The data go to the workers in a temporary folder (on a cluster each would read its own files);
    each worker writes its weights, losses and the examples it saw there; the folder is removed
    afterwards. The processes are bounded by ``timeout`` — :func:`run_workers` stops all of them
    on failure or timeout — and each worker also ends itself after ``timeout`` seconds, should
    this process disappear. Taught in chapter 17.
    """
    workers = _check_int("workers", workers, 1)
    timeout = _check_positive("timeout", timeout)
    addresses = [f"{LOOPBACK}:{port}" for port in free_ports(workers)]
    with tempfile.TemporaryDirectory(prefix="dlbook-workers-") as folder:
        data = Path(folder) / "data.npz"
        np.savez(data, x=np.asarray(x, "float32"), y=np.asarray(y))
        commands = [[sys.executable, "-m", "dlbook.scaling", "--data", str(data),
                     "--out", str(Path(folder) / f"result-{i}.npz"),
                     "--global-batch", str(global_batch), "--epochs", str(epochs),
                     "--learning-rate", repr(float(learning_rate)), "--seed", str(seed),
                     "--timeout", repr(timeout)] for i in range(workers)]
        envs = [worker_environment(tf_config(addresses, i)) for i in range(workers)]
        processes = run_workers(commands, timeout=timeout, log_dir=folder, envs=envs)
        runs = []
        for i in range(workers):
            with np.load(Path(folder) / f"result-{i}.npz") as result:
                count = int(result["weight_count"])
                runs.append(TrainingRun([result[f"weight_{k}"] for k in range(count)],
                                        result["losses"], result["seen"]))
    return MultiWorkerRun(runs, addresses, processes.pids, processes.seconds)


def worker_main(argv: Sequence[str] | None = None) -> None:
    """The program each worker of :func:`train_multi_worker` runs (``python -m dlbook.scaling``).

    ``TF_CONFIG`` (from the environment) tells it the cluster and its own index; creating the
    strategy is the first thing it does with TensorFlow, since the strategy sets up the devices
    and starts the gRPC server that the other workers connect to. Taught in chapter 17.
    """
    parser = argparse.ArgumentParser(prog="python -m dlbook.scaling",
                                     description="one worker of dlbook.scaling.train_multi_worker")
    parser.add_argument("--data", required=True, help=".npz file with arrays x and y")
    parser.add_argument("--out", required=True, help=".npz file to write the results to")
    parser.add_argument("--global-batch", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--learning-rate", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True,
                        help="seconds after which this worker ends itself")
    args = parser.parse_args(argv)
    if "TF_CONFIG" not in os.environ:
        parser.error("TF_CONFIG is not set: this program is one worker of a cluster")
    signal.alarm(max(1, math.ceil(args.timeout)))  # a backstop should the parent disappear

    from dlbook import repro

    repro.setup(seed=args.seed)
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG, joins the cluster
    with np.load(args.data) as data:
        x, y = data["x"], data["y"]
    run = train_data_parallel(strategy, x, y, global_batch=args.global_batch, epochs=args.epochs,
                              learning_rate=args.learning_rate, seed=args.seed)
    weights = {f"weight_{k}": w for k, w in enumerate(run.weights)}
    np.savez(args.out, weight_count=len(run.weights), losses=run.losses, seen=run.seen, **weights)


# --- precision -----------------------------------------------------------------------------------


def float16_underflow(values, scale: float = 1.0) -> float:
    """The fraction of the non-zero ``values`` that become 0 when ``values * scale`` is stored in
    float16 — the gradients a float16 backward pass would lose, with and without loss scaling.

    float16's smallest positive number is 2**-24 ≈ 6.0e-8; anything below half of it rounds to 0.
    Multiplying by a ``scale`` (loss scaling: 2**15 is Keras's starting value) moves small values
    into range. Taught in chapter 17.
    """
    values = np.asarray(values, dtype="float64")
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("values must be a non-empty array of finite numbers")
    scale = _check_positive("scale", scale)
    nonzero = values[values != 0]
    if nonzero.size == 0:
        raise ValueError("values are all zero: there is nothing to lose")
    with np.errstate(over="ignore"):
        stored = (nonzero * scale).astype(np.float16)
    return float(np.mean(stored == 0))


# --- timing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """How many examples a run processed, in the shortest wall-clock and CPU time of its trials."""

    examples: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        """Examples per second of waiting (wall clock): what a user sees."""
        return self.examples / self.wall_seconds if self.wall_seconds > 0 else math.inf

    @property
    def per_cpu_second(self) -> float:
        """Examples per second of CPU time: what the work costs, whatever else the machine does."""
        return self.examples / self.cpu_seconds if self.cpu_seconds > 0 else math.inf


def time_examples(run: Callable[[], int], trials: int = 3) -> Timing:
    """Call ``run()`` — which processes some examples and returns how many — ``trials`` times.

    Keeps the shortest wall-clock time and the shortest CPU time (of this process: all its
    threads, ``tf.data``'s included). The CPU time measures the work; on a busy machine the wall
    clock also counts the time spent waiting for a free core, so it varies much more.
    Taught in chapter 17.
    """
    if not callable(run):
        raise ValueError(f"run must be callable, got {type(run).__name__}")
    trials = _check_int("trials", trials, 1)
    walls, cpus, counts = [], [], set()
    for _ in range(trials):
        wall, cpu = time.perf_counter(), time.process_time()
        examples = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if isinstance(examples, bool) or not isinstance(examples, Integral) or examples < 1:
            raise ValueError(f"run() must return the number of examples it processed, "
                             f"got {examples!r}")
        counts.add(int(examples))
    if len(counts) != 1:
        raise ValueError(f"run() processed a different number of examples in each trial: "
                         f"{sorted(counts)}")
    return Timing(counts.pop(), min(walls), min(cpus))


def consume(batches, step: Callable | None = None) -> int:
    """Iterate over ``(features, labels)`` batches, calling ``step(features, labels)`` on each if
    given; wait for the last step's result; return the number of examples. Taught in chapter 17.
    """
    if step is not None and not callable(step):
        raise ValueError(f"step must be callable or None, got {type(step).__name__}")
    examples, result = 0, None
    for features, labels in batches:
        if step is not None:
            result = step(features, labels)
        examples += int(features.shape[0])
    if result is not None:
        np.asarray(result)  # an accelerator runs asynchronously: wait for it
    return examples


# --- compiled steps ------------------------------------------------------------------------------


def make_train_step(model, optimizer, jit_compile: bool = False):
    """A compiled training step ``step(x, y) -> loss`` for a classifier returning logits.

    One trace serves every batch size (the batch dimension is left open). With
    ``jit_compile=True`` XLA compiles the whole step — forward pass, gradients and optimizer
    update — into fused kernels. Taught in chapter 17.
    """
    if not isinstance(jit_compile, bool):
        raise ValueError(f"jit_compile must be True or False, got {jit_compile!r}")
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    features = model.inputs[0].shape[1:]

    @tf.function(jit_compile=jit_compile, input_signature=[
        tf.TensorSpec((None, *features), tf.float32), tf.TensorSpec((None,), tf.int64)])
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    return step


if __name__ == "__main__":
    worker_main()
