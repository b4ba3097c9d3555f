"""Figures every chapter needs. Each has a title and labelled axes; each returns its Figure.

In a notebook, assign the result (``fig = plot_history(...)``): Jupyter shows figures made in a
cell once; a figure that is also the cell's last value would show twice. Taught in chapter 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_history(history, metrics: Sequence[str] = ("loss",), title: str = "Training curves",
                 xlabel: str = "epoch") -> Figure:
    """Training and validation curves for each metric, one panel per metric.

    ``history`` is a ``keras.callbacks.History`` or its ``.history`` dict. For each metric ``m``
    the panel shows ``m`` and, if recorded, ``val_m``.
    """
    curves: Mapping[str, Sequence[float]] = getattr(history, "history", history)
    if not isinstance(curves, Mapping):
        raise ValueError(f"history must be a keras History or a dict, got {type(history).__name__}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    missing = [m for m in metrics if m not in curves]
    if missing:
        raise ValueError(f"history has no {missing}; it has: {', '.join(sorted(curves))}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        epochs = np.arange(1, len(curves[metric]) + 1)
        ax.plot(epochs, curves[metric], label=f"training {metric}")
        if f"val_{metric}" in curves:
            ax.plot(epochs, curves[f"val_{metric}"], label=f"validation {metric}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix, class_names: Sequence[str], title: str = "Confusion matrix",
                          normalise: bool = False, counted: str = "examples") -> Figure:
    """A confusion matrix (rows: true class, columns: predicted class) with counts in the cells.

    ``counted`` names what the cells count (``"customers"``, ``"digits"``): the colour bar's label.
    With ``normalise=True`` each row is divided by its total, and the bar reads "fraction of true
    class".
    """
    matrix = np.asarray(matrix)
    k = len(class_names)
    if matrix.shape != (k, k):
        raise ValueError(f"matrix must be {k}×{k} for {k} class names, got shape {matrix.shape}")
    shown = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1) if normalise else matrix
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.2 * k + 1.5))
    image = ax.imshow(shown, cmap="Blues")
    fig.colorbar(image, ax=ax, label="fraction of true class" if normalise else counted)
    for (row, col), value in np.ndenumerate(shown):
        text = f"{value:.2f}" if normalise else f"{int(value)}"
        dark = value > shown.max() / 2
        ax.text(col, row, text, ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def image_grid(images, labels: Sequence | None = None, columns: int = 8,
               title: str = "Images", cmap: str = "gray_r") -> Figure:
    """Images in a grid, each captioned with its label if labels are given.

    ``images``: ``(n, h, w)`` greyscale or ``(n, h, w, 3)`` colour.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(f"images must be (n, h, w) or (n, h, w, 1|3), got shape {images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    n = len(images)
    rows = max(1, -(-n // columns))
    columns = min(columns, max(n, 1))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.4 * rows + 0.6),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= n:
            ax.axis("off")
            continue
        image = images[index]
        ax.imshow(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image,
                  cmap=cmap)
        if labels is not None:
            ax.set_title(str(labels[index]), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
