"""dlbook — the companion package of the executable deep-learning book.

Two halves. **The library** is what the chapters import: the pieces a chapter teaches live here
once, tested, and the chapter shows their source (:func:`show`). **The engine**
(:mod:`dlbook.engine`) builds the book — sync, run, sweep, check — and no chapter imports it.

The library:

- :mod:`dlbook.repro` — one call at the top of every chapter: the seed, determinism, quiet logs,
  banner.
- :mod:`dlbook.data` — datasets: registry with provenance and checksums, loaders by kind
  (images, tabular, series, text), vendored files; offline by default.
- :mod:`dlbook.plots` — training curves, confusion matrices, image grids.
- :mod:`dlbook.exercises` — self-check helpers with specific feedback.
- :mod:`dlbook.report` — the headline a chapter reports to ``dlbook run`` and the measures it
  records for the seed-sweep report.
- :mod:`dlbook.checks` — the argument checks the modules share (one message for one mistake).
- Chapter code: :mod:`dlbook.scratch` (2), :mod:`dlbook.activations` (3), :mod:`dlbook.autodiff` (4),
  :mod:`dlbook.optimisers` (5), :mod:`dlbook.builders` (6), :mod:`dlbook.conv` (7),
  :mod:`dlbook.augment` (8), :mod:`dlbook.architectures` (9), :mod:`dlbook.scaling` (17).
- Sequences: :mod:`dlbook.recurrent` (10) — recurrent cells in NumPy, BPTT, forecasting windows,
  baselines; :mod:`dlbook.text` (11) — tokenisers (byte-level BPE), vocabulary hashes, n-gram and
  GRU language models; :mod:`dlbook.attention` (12) — attention, masks, positional encodings,
  transformer models.
- Generative models: :mod:`dlbook.autoencoders` (13), :mod:`dlbook.vae` (14),
  :mod:`dlbook.generative` (the judge of generated digits and the baselines, 13–16),
  :mod:`dlbook.gan` (15) — GANs: the game's theory checked numerically, mode coverage on a
  synthetic ring, WGAN-GP, conditional GANs; :mod:`dlbook.diffusion` (16) — noise schedules,
  the forward process, DDPM and DDIM samplers.
- Reinforcement learning: :mod:`dlbook.rl` (18) — returns, GAE, Bellman targets, replay buffer,
  REINFORCE, A2C and DQN agents on CartPole.
"""

__version__ = "0.1.0"


def show(obj) -> None:
    """Print the source of a dlbook function or class, so a chapter shows the code it teaches.

    The code lives once, in the package; the chapter displays it and then uses it.
    """
    import inspect

    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)):
        raise TypeError(f"show() takes a function, method or class, got {type(obj).__name__}")
    print(inspect.getsource(obj).rstrip())
