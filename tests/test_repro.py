import keras
import numpy as np
import pytest

import dlbook
from dlbook import repro


def test_banner_names_versions_device_and_seed():
    banner = str(repro.setup(seed=7))
    for part in ("Python 3.", "TensorFlow 2.", "Keras 3.", "tensorflow backend", "NumPy",
                 "seed 7"):
        assert part in banner
    assert "CPU" in banner or "GPU" in banner


def test_same_seed_same_numbers():
    def draw():
        repro.setup(seed=3)
        layer = keras.layers.Dense(4)
        layer.build((None, 5))
        return np.random.rand(3), np.asarray(layer.kernel)

    (a_np, a_kernel), (b_np, b_kernel) = draw(), draw()
    np.testing.assert_array_equal(a_np, b_np)
    np.testing.assert_array_equal(a_kernel, b_kernel)
    repro.setup(seed=4)
    assert not np.array_equal(np.random.rand(3), a_np)


@pytest.mark.parametrize("seed", [-1, 1.5, "42", True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        repro.setup(seed=seed)


def test_show_prints_the_source(capsys):
    dlbook.show(repro.banner)
    assert capsys.readouterr().out.startswith("def banner(")
    with pytest.raises(TypeError, match="takes a function, method or class, got int"):
        dlbook.show(3)


def test_tensorflow_loads_without_native_log_noise():
    import os
    import subprocess
    import sys

    script = "from dlbook import repro; repro.setup(); import sys; print('ok', file=sys.stderr)"
    # A fresh environment, as a notebook kernel has: no log level chosen by other tests.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=120, env=env)
    assert result.stderr.strip() == "ok"


def test_setup_exposes_the_seed_and_prints_as_the_banner(monkeypatch):
    monkeypatch.delenv("DLBOOK_SEED", raising=False)
    result = repro.setup(seed=11)
    assert result.seed == 11 and str(result) == result.banner and result.banner.endswith("seed 11")


def test_the_seed_variable_overrides_the_chapter_seed(monkeypatch):
    monkeypatch.setenv("DLBOOK_SEED", "5")
    result = repro.setup(seed=42)
    assert result.seed == 5
    assert result.banner.endswith("seed 5 (from DLBOOK_SEED; the book uses 42)")
    monkeypatch.setenv("DLBOOK_SEED", "five")
    with pytest.raises(ValueError, match="DLBOOK_SEED must be a non-negative integer, got 'five'"):
        repro.setup(seed=42)
