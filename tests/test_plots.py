import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlbook.plots import image_grid, plot_confusion_matrix, plot_history  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_history_has_one_labelled_panel_per_metric():
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "auc": [0.6, 0.8]}
    fig = plot_history(history, metrics=("loss", "auc"), title="Curves")
    assert fig._suptitle.get_text() == "Curves"
    loss, auc = fig.axes
    assert (loss.get_xlabel(), loss.get_ylabel(), loss.get_title()) == ("epoch", "loss", "loss")
    assert len(loss.lines) == 2 and len(auc.lines) == 1  # no val_auc recorded
    np.testing.assert_array_equal(loss.lines[1].get_ydata(), [1.1, 0.7])


def test_history_errors_say_what_is_missing():
    with pytest.raises(ValueError, match=r"history has no \['accuracy'\]; it has: loss"):
        plot_history({"loss": [1.0]}, metrics="accuracy")
    with pytest.raises(ValueError, match="must be a keras History or a dict"):
        plot_history([1.0, 2.0])


def test_confusion_matrix_shows_counts():
    fig = plot_confusion_matrix([[50, 3], [7, 40]], ["stays", "churns"], title="CM")
    ax = fig.axes[0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "CM", "predicted class", "true class")
    assert sorted(t.get_text() for t in ax.texts) == ["3", "40", "50", "7"]
    assert fig.axes[1].get_ylabel() == "examples"  # the colour bar says what is counted
    customers = plot_confusion_matrix([[50, 3], [7, 40]], ["stays", "churns"], counted="customers")
    assert customers.axes[1].get_ylabel() == "customers"
    normalised = plot_confusion_matrix([[50, 50], [0, 10]], ["a", "b"], normalise=True)
    assert "0.50" in [t.get_text() for t in normalised.axes[0].texts]
    assert normalised.axes[1].get_ylabel() == "fraction of true class"
    with pytest.raises(ValueError, match="must be 3×3 for 3 class names"):
        plot_confusion_matrix(np.eye(2), ["a", "b", "c"])


def test_image_grid_captions_each_image():
    fig = image_grid(np.zeros((5, 8, 8)), labels=list("abcde"), columns=3, title="Digits")
    assert fig._suptitle.get_text() == "Digits"
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    image_grid(np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="got 2 labels for 5 images"):
        image_grid(np.zeros((5, 8, 8)), labels=[1, 2])
    with pytest.raises(ValueError, match=r"images must be \(n, h, w\)"):
        image_grid(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="columns must be at least 1"):
        image_grid(np.zeros((5, 8, 8)), columns=0)
