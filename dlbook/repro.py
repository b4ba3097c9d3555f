"""One call at the top of every chapter: the seed, determinism, quiet logs and a version banner.

Every random choice in a chapter derives from the one seed :func:`setup` returns (``SEED``; a
second stream is ``SEED + 1``, and so on), so setting ``DLBOOK_SEED`` re-runs the whole chapter with
other random numbers. That is how ``dlbook sweep`` checks that a chapter's claims hold for any seed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import warnings
from dataclasses import dataclass

DEFAULT_SEED = 42
SEED_VARIABLE = "DLBOOK_SEED"


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` did: the seed in force and the banner (``print`` shows the banner)."""

    seed: int
    banner: str

    def __str__(self) -> str:
        return self.banner


def seed_in_force(seed: int = DEFAULT_SEED) -> int:
    """``DLBOOK_SEED`` if it is set, else ``seed``: the seed a chapter actually runs with."""
    override = os.environ.get(SEED_VARIABLE, "").strip()
    if not override:
        return seed
    if not override.isdigit():
        raise ValueError(f"{SEED_VARIABLE} must be a non-negative integer, got {override!r}")
    return int(override)


def setup(seed: int = DEFAULT_SEED, deterministic: bool = True) -> Setup:
    """Seed every generator, make TensorFlow ops deterministic, quiet the logs.

    Call it once, before anything random, and derive every other seed from the one it returns::

        setup = repro.setup(seed=42)
        print(setup)          # the banner: versions, device, seed
        SEED = setup.seed     # 42, or DLBOOK_SEED when that is set

    The banner names the versions and the device, so a reader whose numbers differ from the book's
    can see why. Taught in chapter 1.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    book_seed, seed = seed, seed_in_force(seed)
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
    text = banner(seed, np.__version__, tf.__version__, keras.__version__, keras.backend.backend(),
                  device)
    if seed != book_seed:
        text += f" (from {SEED_VARIABLE}; the book uses {book_seed})"
    return Setup(seed, text)


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
