"""Tabular datasets: the synthetic churn table and the Wisconsin breast-cancer table."""

import numpy as np
import pandas as pd
import pytest

from dlbook import data
from dlbook.data import load_synthetic_churn
from dlbook.data.tabular import CONTRACT_SPELLINGS, PAYMENT_SPELLINGS, churn_probability


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


def test_recording_bias_changes_only_the_labels_of_churning_seniors():
    honest = load_synthetic_churn(seed=3)
    biased = load_synthetic_churn(seed=3, senior_cancellations_recorded=0.5)
    # the default table is the unbiased one, and the bias touches nothing but the recorded label
    assert honest.frame.equals(load_synthetic_churn(seed=3, senior_cancellations_recorded=1.0).frame)
    assert biased.frame.drop(columns="churned").equals(honest.frame.drop(columns="churned"))
    np.testing.assert_array_equal(biased.outcome, honest.outcome)
    np.testing.assert_array_equal(biased.true_probability, honest.true_probability)
    np.testing.assert_array_equal(honest.outcome, honest.frame["churned"])
    changed = biased.frame["churned"].to_numpy() != biased.outcome
    frame = biased.frame
    assert changed.any()
    assert (frame.loc[changed, "senior_citizen"] == 1).all() and (biased.outcome[changed] == 1).all()
    assert (frame.loc[changed, "churned"] == 0).all()
    # about half of the seniors' cancellations go unrecorded
    churning_seniors = (frame["senior_citizen"] == 1).to_numpy() & (biased.outcome == 1)
    assert changed[churning_seniors].mean() == pytest.approx(0.5, abs=0.1)
    nothing_recorded = load_synthetic_churn(seed=3, senior_cancellations_recorded=0.0)
    assert nothing_recorded.frame.loc[frame["senior_citizen"] == 1, "churned"].sum() == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.5, "0.5", True, float("nan")])
def test_recording_bias_is_validated(fraction):
    with pytest.raises(ValueError, match="senior_cancellations_recorded must be a number in"):
        load_synthetic_churn(senior_cancellations_recorded=fraction)


def test_churn_probability_is_the_generators_model():
    churn = load_synthetic_churn(seed=4)
    frame = churn.frame.copy()
    clean = {spelling: canonical for canonical, spellings in CONTRACT_SPELLINGS.items()
             for spelling in [canonical, *spellings]}
    frame["contract"] = frame["contract"].map(clean)
    paid = {spelling: canonical for canonical, spellings in PAYMENT_SPELLINGS.items()
            for spelling in [canonical, *spellings]}
    frame["payment_method"] = frame["payment_method"].map(paid)
    known = frame["monthly_charges"].notna().to_numpy()
    np.testing.assert_allclose(churn_probability(frame[known]), churn.true_probability[known],
                               rtol=1e-12)
    # one customer by hand: month-to-month, 12 months, $90, 5 calls, e-check, senior, no answer
    customer = pd.DataFrame({"contract": ["month-to-month"], "tenure_months": [12],
                             "monthly_charges": [90.0], "support_calls": [5],
                             "payment_method": ["electronic check"], "senior_citizen": [1],
                             "satisfaction": [np.nan]})
    logit = -3.7 + 1.2 - 0.03 * (12 - 24) + 0.02 * 20 + 0.35 * 4 + 1.0 + 0.5 + 0.3 + 1.5
    np.testing.assert_allclose(churn_probability(customer), [1 / (1 + np.exp(-logit))])


def test_churn_probability_refuses_dirty_or_incomplete_rows():
    customer = pd.DataFrame({"contract": ["M2M"], "tenure_months": [12], "monthly_charges": [90.0],
                             "support_calls": [5], "payment_method": ["electronic check"],
                             "senior_citizen": [1], "satisfaction": [np.nan]})
    with pytest.raises(ValueError, match="contract must hold canonical values"):
        churn_probability(customer)
    with pytest.raises(ValueError, match="monthly_charges must be known"):
        churn_probability(customer.assign(contract="one year", monthly_charges=np.nan))
    with pytest.raises(ValueError, match=r"lacks the columns \['satisfaction'\]"):
        churn_probability(customer.drop(columns="satisfaction"))
