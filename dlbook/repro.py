"""One call at the top of every chapter: seeds, determinism, quiet logs and a version banner."""

from __future__ import annotations

import contextlib
import os
import platform
import warnings

DEFAULT_SEED = 42


def setup(seed: int = DEFAULT_SEED, deterministic: bool = True) -> str:
    """Seed every generator, make TensorFlow ops deterministic, quiet the logs; return a banner.

    Call it before building any model: ``print(dlbook.repro.setup())``. The banner names the
    versions and the device, so a reader whose numbers differ from the book's can see why.
    Taught in chapter 1.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    # Read when TensorFlow is first imported. Level 3 also hides spurious C++ "errors" that
    # TF 2.21 logs on every tf.data map; real failures still raise Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_silenced():
        import keras
        import numpy as np
        import tensorflow as tf

        device = device_name()  # the first GPU probe logs CUDA errors on machines without one

    keras.utils.set_random_seed(seed)  # Python's random, NumPy and the backend in one call
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", module="keras.src.trainers.data_adapters")
    return banner(seed, np.__version__, tf.__version__, keras.__version__, keras.backend.backend(),
                  device)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Silence file descriptor 2 while TensorFlow loads and first looks for a GPU.

    Its C++ runtime prints CUDA probing messages before its logging is configured, so
    ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them, and Jupyter would store them in every notebook.
    Python-level errors are unaffected: they are raised as exceptions.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"{len(gpus)} GPU(s)"
    return f"CPU ({os.cpu_count()} cores)"


def banner(seed: int, numpy: str, tensorflow: str, keras: str, backend: str, device: str) -> str:
    return (
        f"Python {platform.python_version()} | TensorFlow {tensorflow} | "
        f"Keras {keras} ({backend} backend) | NumPy {numpy} | {device} | seed {seed}"
    )
