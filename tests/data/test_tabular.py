"""Tabular datasets: the synthetic churn table and the Wisconsin breast-cancer table."""

import pytest

from dlbook import data
from dlbook.data import load_synthetic_churn


def test_synthetic_churn_is_reproducible_and_documented():
    first, second = load_synthetic_churn(seed=1), load_synthetic_churn(seed=1)
    assert first.frame.equals(second.frame)
    assert not first.frame.equals(load_synthetic_churn(seed=2).frame)
    frame = first.frame
    assert len(frame) == 6000 and frame["customer_id"].is_unique
    assert 0.15 < frame["churned"].mean() < 0.27  # churners are the minority
    # labels are drawn from the documented probabilities
    assert abs(frame["churned"].mean() - first.true_probability.mean()) < 0.02
    assert frame["satisfaction"].isna().mean() == pytest.approx(0.3, abs=0.03)
    assert {"M2M", "month-to-month"} <= set(frame["contract"])
    assert first.effects["region"] == 0.0


def test_synthetic_churn_effects_show_in_the_data():
    frame = load_synthetic_churn().frame
    by_survey = frame.groupby(frame["satisfaction"].isna())["churned"].mean()
    assert by_survey[True] > by_survey[False] + 0.1  # not answering is a churn signal
    by_region = frame.groupby("region")["churned"].mean()
    assert by_region.max() - by_region.min() < 0.05  # region is a decoy


@pytest.mark.parametrize("n", [10, 100.5, "6000"])
def test_synthetic_churn_size_is_validated(n):
    with pytest.raises(ValueError, match="n_customers must be an int of at least 100"):
        load_synthetic_churn(n_customers=n)


def test_breast_cancer_is_the_bundled_real_table():
    frame = data.load_breast_cancer()
    assert frame.shape == (569, 31)
    assert frame["diagnosis"].value_counts().to_dict() == {"benign": 357, "malignant": 212}
    assert frame.drop(columns="diagnosis").notna().all().all()
    # malignant masses are larger on average: the label is attached to the right rows
    means = frame.groupby("diagnosis")["mean radius"].mean()
    assert means["malignant"] > means["benign"] + 3
    assert not data.info("breast_cancer").synthetic
