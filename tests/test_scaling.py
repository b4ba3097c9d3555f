"""Tests of dlbook.scaling: free ports and TF_CONFIG, the worker launcher (results, failures,
timeouts, and no process left behind in any case), float16 underflow, the timing helpers, the
data-parallel training step against a hand-computed SGD step, and argument errors. One test runs
in a fresh interpreter, because splitting the CPU into virtual devices must happen before
TensorFlow starts."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from dlbook import scaling  # noqa: E402

PYTHON = sys.executable


def python(code):
    return [PYTHON, "-c", textwrap.dedent(code)]


def alive(pid):
    """Whether a process with this id runs (a reaped process no longer exists)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- ports and TF_CONFIG -------------------------------------------------------------------------


def test_free_ports_are_distinct_and_free():
    ports = scaling.free_ports(5)
    assert len(set(ports)) == 5
    assert all(0 < p < 65536 and scaling.port_is_free(p) for p in ports)


def test_port_is_free_sees_a_listening_server():
    with socket.socket() as server:
        server.bind((scaling.LOOPBACK, 0))
        server.listen()
        port = server.getsockname()[1]
        assert not scaling.port_is_free(port)
    assert scaling.port_is_free(port)


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_free_ports_rejects_bad_counts(count):
    with pytest.raises(ValueError, match="count"):
        scaling.free_ports(count)


def test_tf_config_structure():
    addresses = ["10.0.0.1:2222", "10.0.0.2:2222", "localhost:3333"]
    config = scaling.tf_config(addresses, 2)
    assert config == {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 2}}
    assert json.loads(json.dumps(config)) == config  # what goes into the environment


@pytest.mark.parametrize("addresses, index, message", [
    ([], 0, "non-empty"),
    ("127.0.0.1:1", 0, "non-empty list"),
    (["127.0.0.1"], 0, "host:port"),
    (["127.0.0.1:0"], 0, "port in 1"),
    (["127.0.0.1:70000"], 0, "port in 1"),
    ([":2222"], 0, "host:port"),
    (["a:1", "a:1"], 0, "distinct"),
    (["a:1", "b:2"], 2, "index"),
    (["a:1", "b:2"], -1, "index"),
    (["a:1", "b:2"], True, "index"),
])
def test_tf_config_argument_errors(addresses, index, message):
    with pytest.raises(ValueError, match=message):
        scaling.tf_config(addresses, index)


def test_worker_environment():
    base = {"PATH": "/bin", "DLBOOK_SEED": "3", "DLBOOK_MEASURES": "/tmp/m", "CUDA_VISIBLE_DEVICES": "0"}
    config = scaling.tf_config(["127.0.0.1:1234", "127.0.0.1:1235"], 1)
    env = scaling.worker_environment(config, base)
    assert json.loads(env["TF_CONFIG"]) == config
    assert env["PATH"] == "/bin" and "DLBOOK_SEED" not in env and "DLBOOK_MEASURES" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert base["DLBOOK_SEED"] == "3"  # the caller's mapping is not changed


@pytest.fixture
def left_behind():
    """The processes this test started that are still alive: children of the test process that
    were not there when the test began (other tests of the session may keep their own)."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    return lambda: [p for p in psutil.Process().children(recursive=True) if p.pid not in before]


# --- the launcher --------------------------------------------------------------------------------


def test_run_workers_success_collects_output(tmp_path):
    commands = [python(f"import os; print('worker', {i}, os.environ['ROLE'])") for i in range(2)]
    envs = [dict(os.environ, ROLE=f"role-{i}") for i in range(2)]
    run = scaling.run_workers(commands, timeout=60, log_dir=tmp_path, envs=envs)
    assert [log.strip() for log in run.logs] == ["worker 0 role-0", "worker 1 role-1"]
    assert len(run.pids) == 2 and not any(alive(pid) for pid in run.pids)
    assert run.seconds > 0


def test_a_failing_worker_stops_the_others(tmp_path, left_behind):
    commands = [python("import time; time.sleep(60)"),
                python("import sys; print('something broke'); sys.exit(3)")]
    started = time.monotonic()
    with pytest.raises(scaling.WorkerError, match=r"worker 1 exited with code 3") as caught:
        scaling.run_workers(commands, timeout=60, log_dir=tmp_path)
    assert "something broke" in str(caught.value)  # the end of its output
    assert time.monotonic() - started < 30, "the sleeping worker must not be waited for"
    assert not left_behind(), "no process left behind"


def test_timeout_stops_every_worker(tmp_path, left_behind):
    commands = [python("print('waiting', flush=True); import time; time.sleep(60)")] * 2
    started = time.monotonic()
    with pytest.raises(scaling.WorkerError, match=r"timeout of 1 s.*\[0, 1\]") as caught:
        scaling.run_workers(commands, timeout=1, log_dir=tmp_path, poll=0.02)
    assert "waiting" in str(caught.value)
    assert time.monotonic() - started < 30
    assert not left_behind()


def test_a_worker_that_cannot_start_stops_those_already_started(tmp_path, left_behind):
    commands = [python("import time; time.sleep(60)"), [str(tmp_path / "no-such-program")]]
    with pytest.raises(FileNotFoundError):
        scaling.run_workers(commands, timeout=60, log_dir=tmp_path)
    assert not left_behind()


def test_stop_kills_a_process_that_ignores_terminate():
    code = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    stubborn = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"  # its handler is installed
    scaling._stop([stubborn], grace=0.5)
    stubborn.stdout.close()
    assert stubborn.returncode == -signal.SIGKILL
    assert not alive(stubborn.pid)


@pytest.mark.parametrize("kwargs, message", [
    ({"commands": []}, "non-empty list of commands"),
    ({"commands": "python"}, "non-empty list of commands"),
    ({"commands": ["python -c 1"]}, "list of strings"),
    ({"commands": [[PYTHON, 1]]}, "list of strings"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": float("inf")}, "timeout"),
    ({"envs": [{}, {}]}, "one environment per command"),
    ({"log_dir": "/no/such/folder"}, "existing folder"),
])
def test_run_workers_argument_errors(tmp_path, kwargs, message, left_behind):
    arguments = {"commands": [python("pass")], "timeout": 10, "log_dir": tmp_path, **kwargs}
    commands = arguments.pop("commands")
    with pytest.raises(ValueError, match=message):
        scaling.run_workers(commands, **arguments)
    assert not left_behind()


def test_train_multi_worker_argument_errors():
    common = {"global_batch": 4, "epochs": 1, "learning_rate": 0.1, "seed": 0}
    with pytest.raises(ValueError, match="workers"):
        scaling.train_multi_worker(np.zeros((8, 4)), np.zeros(8), workers=0, **common)
    with pytest.raises(ValueError, match="timeout"):
        scaling.train_multi_worker(np.zeros((8, 4)), np.zeros(8), timeout=-1, **common)


def test_worker_main_refuses_to_run_without_tf_config(monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    arguments = ["--data", "d.npz", "--out", "o.npz", "--global-batch", "4", "--epochs", "1",
                 "--learning-rate", "0.1", "--seed", "0", "--timeout", "10"]
    with pytest.raises(SystemExit):
        scaling.worker_main(arguments)
    assert "TF_CONFIG is not set" in capsys.readouterr().err


# --- float16 -------------------------------------------------------------------------------------


def test_float16_underflow_of_tiny_gradients():
    assert scaling.float16_underflow([1e-8, -1e-8, 3e-9]) == 1.0
    assert scaling.float16_underflow([1e-8, -1e-8, 3e-9], scale=2**15) == 0.0
    assert scaling.float16_underflow([1e-8, 1.0, 0.0, 0.0]) == 0.5  # zeros are not counted


def test_float16_underflow_threshold_is_half_the_smallest_subnormal():
    smallest = scaling.FLOAT16_SMALLEST_SUBNORMAL
    assert np.float16(smallest) > 0 and np.float16(smallest / 2) == 0
    assert float(np.finfo(np.float16).smallest_subnormal) == smallest
    assert scaling.float16_underflow([smallest, 0.6 * smallest, 0.5 * smallest]) == pytest.approx(1 / 3)


def test_float16_underflow_agrees_with_a_float16_tensor():
    values = np.geomspace(1e-12, 1e-2, 200)
    as_tensor = tf.cast(tf.constant(values, tf.float32), tf.float16).numpy()
    assert scaling.float16_underflow(values) == pytest.approx(np.mean(as_tensor == 0))


@pytest.mark.parametrize("values, scale, message", [
    ([], 1.0, "non-empty"),
    ([1.0, np.nan], 1.0, "finite"),
    ([0.0, 0.0], 1.0, "all zero"),
    ([1e-8], 0.0, "scale"),
    ([1e-8], -2.0, "scale"),
    ([1e-8], float("nan"), "scale"),
])
def test_float16_underflow_argument_errors(values, scale, message):
    with pytest.raises(ValueError, match=message):
        scaling.float16_underflow(values, scale)


# --- devices, memory and timing ------------------------------------------------------------------


def test_matmul_gflops_is_a_positive_rate():
    rate = scaling.matmul_gflops(32, repeats=5, trials=2)
    assert np.isfinite(rate) and rate > 0


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": 8, "repeats": 0},
                                    {"size": 8, "trials": 0}])
def test_matmul_gflops_argument_errors(kwargs):
    with pytest.raises(ValueError):
        scaling.matmul_gflops(**kwargs)


def test_virtual_cpus_rejects_bad_counts():
    with pytest.raises(ValueError, match="count"):
        scaling.virtual_cpus(0)


def test_peak_memory_counts_an_allocation():
    megabyte = 2**20

    def allocate():
        return tf.reduce_sum(tf.ones((megabyte // 4,), tf.float32) * 2.0)

    assert scaling.peak_memory(allocate) >= megabyte
    with pytest.raises(ValueError, match="callable"):
        scaling.peak_memory(42)


def test_time_examples_and_consume():
    calls = []
    batches = [(np.zeros((3, 2)), np.zeros(3)), (np.zeros((2, 2)), np.zeros(2))]
    assert scaling.consume(batches, lambda x, y: calls.append(len(x)) or tf.constant(0.0)) == 5
    assert calls == [3, 2]
    timing = scaling.time_examples(lambda: scaling.consume(batches), trials=2)
    assert timing.examples == 5 and timing.wall_seconds >= 0 and timing.cpu_seconds >= 0
    assert timing.per_second > 0 and timing.per_cpu_second > 0


def test_time_examples_argument_errors():
    with pytest.raises(ValueError, match="callable"):
        scaling.time_examples(5)
    with pytest.raises(ValueError, match="number of examples"):
        scaling.time_examples(lambda: None)
    counter = iter(range(1, 10))
    with pytest.raises(ValueError, match="different number"):
        scaling.time_examples(lambda: next(counter), trials=2)
    with pytest.raises(ValueError, match="step"):
        scaling.consume([], step=3)


# --- models and training steps -------------------------------------------------------------------


def test_build_digit_mlp_shape_parameters_and_seed():
    model = scaling.build_digit_mlp(0)
    assert model.count_params() == 64 * 32 + 32 + 32 * 10 + 10 == 2410
    assert model.output_shape == (None, 10)
    same, other = scaling.build_digit_mlp(0), scaling.build_digit_mlp(1)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), same.get_weights(), strict=True))
    assert not np.array_equal(model.get_weights()[0], other.get_weights()[0])
    with pytest.raises(ValueError, match="seed"):
        scaling.build_digit_mlp(-1)
    with pytest.raises(ValueError, match="hidden"):
        scaling.build_digit_mlp(0, hidden=0)


def small_data(n=8, features=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, features)).astype("float32"), rng.integers(0, 10, n)


def test_train_data_parallel_equals_hand_computed_sgd():
    x, y = small_data()
    run = scaling.train_data_parallel(tf.distribute.OneDeviceStrategy("CPU:0"), x, y,
                                      global_batch=4, epochs=2, learning_rate=0.5, seed=3)
    model = scaling.build_digit_mlp(3, inputs=6)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for start in range(0, len(run.seen), 4):  # the same examples, in the order the run saw them
        rows = run.seen[start:start + 4]
        with tf.GradientTape() as tape:
            loss = loss_fn(y[rows], model(x[rows]))
        for variable, gradient in zip(model.trainable_variables,
                                      tape.gradient(loss, model.trainable_variables), strict=True):
            variable.assign_sub(0.5 * gradient)
        losses.append(float(loss))
    assert sorted(run.seen[:8]) == list(range(8)) and sorted(run.seen[8:]) == list(range(8))
    np.testing.assert_allclose(run.losses, losses, rtol=1e-5)
    for got, want in zip(run.weights, model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_train_data_parallel_argument_errors():
    x, y = small_data()
    one = tf.distribute.OneDeviceStrategy("CPU:0")
    common = {"epochs": 1, "learning_rate": 0.1, "seed": 0}
    with pytest.raises(ValueError, match="whole global batches"):
        scaling.train_data_parallel(one, x, y, global_batch=3, **common)
    with pytest.raises(ValueError, match="x must be"):
        scaling.train_data_parallel(one, x, y[:5], global_batch=4, **common)
    with pytest.raises(ValueError, match="learning_rate"):
        scaling.train_data_parallel(one, x, y, global_batch=4, epochs=1, learning_rate=0, seed=0)


def test_replica_gradients_on_one_device_is_the_tape_gradient():
    x, y = small_data()
    one = tf.distribute.OneDeviceStrategy("CPU:0")
    with one.scope():
        model = scaling.build_digit_mlp(0, inputs=6)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x))
    reference = tape.gradient(loss, model.trainable_variables)
    for got, want in zip(scaling.replica_gradients(one, model, x, y, tf.reduce_mean), reference,
                         strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="replica_loss"):
        scaling.replica_gradients(one, model, x, y, "mean")


def test_make_train_step_with_and_without_xla():
    x, y = small_data(16)
    results = []
    for jit in (False, True):
        model = scaling.build_digit_mlp(0, inputs=6)
        step = scaling.make_train_step(model, keras.optimizers.SGD(0.1), jit_compile=jit)
        losses = [float(step(x, y.astype("int64"))) for _ in range(5)]
        assert losses[-1] < losses[0], "the loss must fall"
        step(x[:3], y[:3].astype("int64"))  # any batch size, one trace
        results.append(model.get_weights())
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="jit_compile"):
        scaling.make_train_step(model, keras.optimizers.SGD(0.1), jit_compile="yes")


VIRTUAL_DEVICES = """
from dlbook import repro
repro.setup(seed=0)
from dlbook import scaling
import numpy as np, tensorflow as tf
print(scaling.virtual_cpus(2), scaling.virtual_cpus(2))  # a second call changes nothing
two = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
one = tf.distribute.OneDeviceStrategy("CPU:0")
rng = np.random.default_rng(0)
x, y = rng.random((16, 6)).astype("float32"), rng.integers(0, 10, 16)
with two.scope():
    model = scaling.build_digit_mlp(0, inputs=6)
mean = scaling.replica_gradients(two, model, x, y, tf.reduce_mean)
right = scaling.replica_gradients(
    two, model, x, y, lambda losses: tf.nn.compute_average_loss(losses, global_batch_size=16))
for wrong, good in zip(mean, right):
    np.testing.assert_allclose(wrong, 2 * good, rtol=1e-5, atol=1e-7)
common = dict(global_batch=8, epochs=2, learning_rate=0.5, seed=1)
a = scaling.train_data_parallel(one, x, y, **common)
b = scaling.train_data_parallel(two, x, y, **common)
assert np.array_equal(a.seen, b.seen)
assert max(np.abs(u - v).max() for u, v in zip(a.weights, b.weights)) <= 1e-6
try:
    scaling.virtual_cpus(3)
except RuntimeError as error:
    print("refused:", error)
"""


def test_virtual_cpus_mirrored_training_and_the_replica_loss_mistake():
    """In a fresh interpreter: split the CPU, then data parallelism on the two devices."""
    done = subprocess.run([PYTHON, "-c", VIRTUAL_DEVICES], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    names = str(["/device:CPU:0", "/device:CPU:1"])
    assert lines[0] == f"{names} {names}"
    assert lines[-1].startswith("refused: cannot split the CPU into 3 logical devices")
    assert "already started with 2" in lines[-1] and "restart the kernel" in lines[-1]


def test_train_multi_worker_twice_in_a_row_equals_one_device():
    """Two real worker processes on loopback, run twice in a row (as a re-executed notebook cell
    does): each run equals one device on the global batch, and leaves no process or port behind."""
    x, y = small_data(16)
    common = {"global_batch": 8, "epochs": 2, "learning_rate": 0.5, "seed": 4}
    single = scaling.train_data_parallel(tf.distribute.OneDeviceStrategy("CPU:0"), x, y, **common)
    rng = np.random.default_rng(4)  # the order depends on the seed argument alone
    np.testing.assert_array_equal(single.seen, np.concatenate([rng.permutation(16),
                                                               rng.permutation(16)]))
    for _ in range(2):
        cluster = scaling.train_multi_worker(x, y, workers=2, timeout=300, **common)
        assert len(cluster.runs) == 2 and not any(alive(pid) for pid in cluster.pids)
        ports = [int(address.rsplit(":", 1)[1]) for address in cluster.addresses]
        assert all(scaling.port_is_free(port) for port in ports)
        first, second = cluster.runs
        assert sorted(np.concatenate([first.seen[:4], second.seen[:4]])) == sorted(
            single.seen[:8].tolist()), "the two workers share the first global batch"
        np.testing.assert_array_equal(first.losses, second.losses)
        np.testing.assert_allclose(first.losses, single.losses, rtol=1e-5)
        for a, b, want in zip(first.weights, second.weights, single.weights, strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
