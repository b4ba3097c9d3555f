"""Shared pytest configuration.

nbval: do not compare stderr (TensorFlow and Keras write log lines there that vary by machine),
HTML (pandas' HTML repr of a DataFrame is compared through its text/plain twin instead) or
JavaScript.
"""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("text/html", "application/javascript", "stderr")
