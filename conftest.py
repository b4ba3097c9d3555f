"""Shared pytest configuration.

nbval: do not compare stderr (TensorFlow and Keras write log lines there that vary by machine),
HTML (pandas' HTML repr of a DataFrame is compared through its text/plain twin instead) or
JavaScript. Kernels get the thread count the stored outputs were made with (the last digits of a
training result depend on it), and never a seed override.
"""

import os

from dlbook.engine.runner import BOOK_THREADS, THREAD_VARIABLES

for _variable in THREAD_VARIABLES:
    os.environ[_variable] = str(BOOK_THREADS)
for _variable in ("DLBOOK_SEED", "DLBOOK_MEASURES"):
    os.environ.pop(_variable, None)


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("text/html", "application/javascript", "stderr")
