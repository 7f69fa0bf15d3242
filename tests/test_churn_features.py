"""Churn features: values on a hand-built log, and no leakage from after the cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custval import BetaGeoModel, DataError, churn_features, churn_labels

CUTOFF = pd.Timestamp("2024-04-01")


@pytest.fixture
def log() -> pd.DataFrame:
    rows = [
        # customer, time, order, product, quantity, amount
        ("a", "2024-01-01 10:00", "o1", "p1", 2, 20.0),
        ("a", "2024-01-01 10:00", "o1", "p2", 1, 10.0),  # same order, second line
        ("a", "2024-02-15 09:00", "o2", "p1", 1, 10.0),
        ("a", "2024-02-20 09:00", "r2", "p1", -1, -10.0),  # return of o2
        ("a", "2024-03-20 12:00", "o3", "p3", 3, 60.0),
        ("a", "2024-04-01 00:00", "o4", "p3", 1, 20.0),  # exactly at the cutoff: past
        ("b", "2023-06-01 08:00", "o5", "p1", 1, 5.0),
        ("c", "2024-04-01 00:00:01", "o6", "p1", 1, 5.0),  # first seen after the cutoff
        ("a", "2024-05-01 10:00", "o7", "p1", 1, 99.0),  # future
    ]
    customer, time, order, product, quantity, amount = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "customer_id": customer,
            "timestamp": pd.to_datetime(time, format="ISO8601"),
            "order_id": order,
            "product_code": product,
            "quantity": quantity,
            "amount": amount,
        }
    )


def test_values_on_a_hand_built_log(log):
    features = churn_features(log, cutoff=CUTOFF, windows=("30D", "90D"), model_features=False)
    assert features.index.tolist() == ["a", "b"]
    a = features.loc["a"]
    assert a["recency_days"] == 0.0
    assert a["tenure_days"] == pytest.approx(91 - 10 / 24)
    assert a["orders"] == 4  # o1 (two lines), o2, o3, o4; the return is not an order
    assert a["spend"] == pytest.approx(110.0)  # 30 + 10 - 10 + 60 + 20
    assert a["orders_30D"] == 2  # o3 and o4
    assert a["spend_30D"] == pytest.approx(80.0)
    assert a["orders_90D"] == 3  # o2, o3, o4 (o1 is 91 days back)
    assert a["orders_trend_30D"] == pytest.approx((2 - 1) / 3)  # o2 is in the 30 days before
    gaps = np.diff(
        pd.to_datetime(
            ["2024-01-01 10:00", "2024-02-15 09:00", "2024-03-20 12:00", "2024-04-01 00:00"]
        ).to_numpy()
    ) / np.timedelta64(1, "D")
    assert a["gap_mean_days"] == pytest.approx(gaps.mean())
    assert a["gap_std_days"] == pytest.approx(gaps.std(ddof=1))
    assert a["last_gap_days"] == pytest.approx(gaps[-1])
    assert a["overdue"] == 0.0
    values = np.array([30.0, 10.0, 60.0, 20.0])
    assert a["order_value_mean"] == pytest.approx(values.mean())
    assert a["order_value_std"] == pytest.approx(values.std(ddof=1))
    assert a["order_value_cv"] == pytest.approx(values.std(ddof=1) / values.mean())
    assert a["return_rate"] == pytest.approx(1 / 6)
    assert a["returned_share"] == pytest.approx(10 / 120)
    assert a["items_per_order"] == pytest.approx(8 / 4)
    assert a["lines_per_order"] == pytest.approx(5 / 4)
    assert a["products"] == 3
    assert a["product_variety"] == pytest.approx(3 / 5)
    b = features.loc["b"]
    assert b["orders"] == 1 and b["orders_90D"] == 0 and b["orders_trend_90D"] == 0
    assert np.isnan(b["gap_mean_days"]) and np.isnan(b["order_value_std"])
    assert features.dtypes.eq(np.float64).all()


def test_rows_match_the_labelled_customers(log):
    log = pd.concat(
        [log, log.iloc[[0]].assign(timestamp=pd.Timestamp("2024-08-01"), customer_id="z")]
    )
    features = churn_features(log, cutoff=CUTOFF, model_features=False)
    labels = churn_labels(log, cutoff=CUTOFF, horizon="90D")
    assert features.index.equals(labels.index)


def test_without_optional_columns_an_order_is_a_timestamp(log):
    plain = log[["customer_id", "timestamp", "amount"]]
    features = churn_features(plain, cutoff=CUTOFF, model_features=False)
    assert features.loc["a", "orders"] == 4  # the two lines of o1 share a timestamp
    for column in ("items_per_order", "lines_per_order", "products", "product_variety"):
        assert column not in features.columns


def test_customer_attributes_and_touchpoints(log):
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "channel": ["web", "store", "web"],
            "member": [True, False, True],
            "age": [31, 45, 22],
            "joined": pd.to_datetime(["2024-03-01", "2024-05-01", None]),
        }
    )
    touchpoints = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "a", "zz"],
            "timestamp": pd.to_datetime(
                ["2024-03-25", "2023-01-01", "2024-03-31", "2024-04-02", "2024-03-01"]
            ),
            "kind": ["call", "email", "email", "call", "call"],
        }
    )
    features = churn_features(
        log,
        cutoff=CUTOFF,
        customers=customers,
        touchpoints=touchpoints,
        windows=("30D", "365D"),
        model_features=False,
    )
    assert isinstance(features["channel"].dtype, pd.CategoricalDtype)
    assert list(features["channel"].cat.categories) == ["store", "web"]
    assert isinstance(features["member"].dtype, pd.CategoricalDtype)
    assert features.loc["a", "age"] == 31.0
    assert features.loc["a", "days_since_joined"] == 31.0
    assert np.isnan(features.loc["b", "days_since_joined"])  # joined after the cutoff: unknown
    assert features.loc["a", "touchpoints_30D"] == 1  # the call on 2024-04-02 is in the future
    assert features.loc["a", "touchpoints_365D"] == 1  # the 2023 e-mail is older than 365 days
    assert features.loc["a", "touchpoints_call"] == 1
    assert features.loc["b", "touchpoints_email"] == 1
    assert features.loc["a", "days_since_touchpoint"] == 7.0
    assert features.loc["b", "days_since_touchpoint"] == 1.0


def test_integer_ids_join_a_log_with_text_ids(log):
    numbered = log.assign(customer_id=log["customer_id"].map({"a": "1", "b": "2", "c": "3"}))
    customers = pd.DataFrame({"customer_id": [1, 2], "tier": ["gold", "basic"]})
    touchpoints = pd.DataFrame({"customer_id": [2], "timestamp": pd.to_datetime(["2024-03-01"])})
    features = churn_features(
        numbered,
        cutoff=CUTOFF,
        customers=customers,
        touchpoints=touchpoints,
        model_features=False,
    )
    assert features["tier"].astype(str).tolist() == ["gold", "basic"]
    assert features["touchpoints_90D"].tolist() == [0.0, 1.0]


@pytest.mark.filterwarnings("ignore:BG/NBD model. the Hessian")  # standard errors unused here
def test_bgnbd_features_match_the_model():
    rng = np.random.default_rng(3)
    n = 400
    ids = rng.integers(0, 150, n)
    times = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.uniform(0, 500, n), unit="D")
    log = pd.DataFrame({"customer_id": ids, "timestamp": times, "amount": rng.gamma(2, 10, n)})
    cutoff = pd.Timestamp("2024-01-01")
    features = churn_features(log, cutoff=cutoff, horizon="30D")
    from custval import rfm_summary

    summary = rfm_summary(log, freq="D", observation_end=cutoff)
    model = BetaGeoModel().fit(summary)
    expected_alive = model.probability_alive(summary)
    pd.testing.assert_series_equal(
        features["p_alive"], expected_alive.rename("p_alive"), check_index_type=False, rtol=1e-6
    )
    purchases = model.expected_purchases(summary, "30D")
    np.testing.assert_allclose(features["expected_purchases"], purchases, rtol=1e-6)
    # P(no purchase in 30 days) lies between 1 - P(alive) and 1, and falls with expected purchases
    assert np.all(features["p_no_purchase"] >= 1 - features["p_alive"] - 1e-12)
    assert np.all(features["p_no_purchase"] <= 1)
    order = np.argsort(features["expected_purchases"].to_numpy())
    assert np.corrcoef(order, features["p_no_purchase"].to_numpy()[order])[0, 1] < 0


def test_p_no_purchase_by_simulation():
    """The closed form agrees with simulating the BG/NBD posterior for one customer."""
    from custval.churn._features import _bgnbd_predict

    model = BetaGeoModel.from_params(r=0.5, alpha=20.0, a=0.8, b=2.5, freq="D")
    summary = pd.DataFrame({"frequency": [3.0], "recency": [100.0], "T": [200.0]})
    summary.attrs["freq"] = "D"
    p_alive, _, no_purchase = _bgnbd_predict(model, summary, 60.0)
    rng = np.random.default_rng(0)
    rate = rng.gamma(0.5 + 3, 1 / (20.0 + 200.0), 400_000)  # posterior given alive
    alive = rng.uniform(size=rate.size) < p_alive[0]
    silent = ~alive | (rng.poisson(rate * 60.0) == 0)
    assert no_purchase[0] == pytest.approx(silent.mean(), abs=3e-3)


def test_errors(log):
    with pytest.raises(DataError, match=r"no customer has a purchase on or before the cutoff"):
        churn_features(log, cutoff="2020-01-01")
    with pytest.raises(DataError, match=r"windows must be a non-empty sequence"):
        churn_features(log, cutoff=CUTOFF, windows="30D")
    with pytest.raises(DataError, match=r"duration 30 has no unit"):
        churn_features(log, cutoff=CUTOFF, windows=(30,))
    with pytest.raises(DataError, match=r"customers must be a pandas DataFrame, got dict"):
        churn_features(log, cutoff=CUTOFF, customers={"customer_id": ["a"]})
    with pytest.raises(DataError, match=r"customers needs a 'customer_id' column"):
        churn_features(log, cutoff=CUTOFF, customers=pd.DataFrame({"id": ["a"]}))
    with pytest.raises(DataError, match=r"customers has 1 duplicated customer_id values"):
        churn_features(log, cutoff=CUTOFF, customers=pd.DataFrame({"customer_id": ["a", "a"]}))
    with pytest.raises(DataError, match=r"no customer_id in customers matches one in trans"):
        churn_features(log, cutoff=CUTOFF, customers=pd.DataFrame({"customer_id": [1, 2]}))
    with pytest.raises(DataError, match=r"customers has column\(s\) \['spend'\] with the names"):
        churn_features(
            log, cutoff=CUTOFF, customers=pd.DataFrame({"customer_id": ["a"], "spend": [1.0]})
        )
    touch = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"]})
    with pytest.raises(DataError, match=r"touchpoints column 'timestamp' must hold datetimes"):
        churn_features(log, cutoff=CUTOFF, touchpoints=touch)
    with pytest.raises(DataError, match=r"no customer_id in touchpoints matches one in trans"):
        churn_features(
            log,
            cutoff=CUTOFF,
            touchpoints=touch.assign(customer_id=[7], timestamp=pd.Timestamp("2024-01-01")),
        )
    with pytest.raises(DataError, match=r"touchpoints is missing required column\(s\) 'timestamp'"):
        churn_features(log, cutoff=CUTOFF, touchpoints=touch[["customer_id"]])


# ------------------------------------------------------------------------------------ leakage
def _base_log(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    return pd.DataFrame(
        {
            "customer_id": rng.integers(0, 60, n),
            "timestamp": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 600 * 24, n), unit="h"),
            "order_id": rng.integers(0, 200, n),
            "product_code": rng.choice(["p1", "p2", "p3", "p4"], n),
            "quantity": rng.choice([1, 2, 3, -1], n, p=[0.5, 0.25, 0.15, 0.1]),
            "amount": np.round(rng.gamma(2, 15, n), 2),
        }
    ).assign(amount=lambda f: np.where(f["quantity"] < 0, -f["amount"], f["amount"]))


_BASE = _base_log()
_LEAK_CUTOFF = pd.Timestamp("2024-01-15")
_CUSTOMERS = pd.DataFrame(
    {
        "customer_id": np.arange(70),
        "segment": np.where(np.arange(70) % 3 == 0, "gold", "basic"),
        "signup": pd.Timestamp("2022-06-01") + pd.to_timedelta(np.arange(70) * 9, unit="D"),
    }
)
_TOUCH = pd.DataFrame(
    {
        "customer_id": np.arange(0, 70, 2),
        "timestamp": pd.Timestamp("2023-09-01") + pd.to_timedelta(np.arange(35) * 7, unit="D"),
        "kind": np.where(np.arange(35) % 2 == 0, "call", "email"),
    }
)


def _features(log: pd.DataFrame) -> pd.DataFrame:
    return churn_features(
        log,
        cutoff=_LEAK_CUTOFF,
        customers=_CUSTOMERS,
        touchpoints=_TOUCH,
        windows=("30D", "90D", "365D"),
        horizon="60D",
    )


_EXPECTED = None


def _expected() -> pd.DataFrame:
    global _EXPECTED
    if _EXPECTED is None:
        _EXPECTED = _features(_BASE)
    return _EXPECTED


_new_rows = st.lists(
    st.tuples(
        st.integers(0, 80),  # customer: existing ones and new ones (60..80)
        st.integers(1, 400 * 24 * 60),  # minutes after the cutoff (0 excluded: that is the past)
        st.integers(0, 250),  # order id: may reuse an order from before the cutoff
        st.sampled_from(["p1", "p5"]),
        st.integers(-3, 5),
        st.floats(-500, 500, allow_nan=False),
    ),
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    new=_new_rows,
    drop=st.lists(st.booleans(), min_size=1, max_size=300),
    scale=st.floats(0.0, 10.0),
    shuffle=st.integers(0, 2**32 - 1),
)
def test_no_feature_changes_when_the_future_changes(new, drop, scale, shuffle):
    """Altering, adding or removing transactions after the cutoff changes no feature."""
    log = _BASE.copy()
    future = (log["timestamp"] > _LEAK_CUTOFF).to_numpy()
    # alter: rescale and flip the future amounts
    log.loc[future, "amount"] = -log.loc[future, "amount"] * scale
    # remove: some future rows
    mask = np.resize(np.asarray(drop), len(log)) & future
    log = log[~mask]
    # add: new future rows, some for customers never seen before
    if new:
        customer, minutes, order, product, quantity, amount = zip(*new, strict=True)
        added = pd.DataFrame(
            {
                "customer_id": customer,
                "timestamp": _LEAK_CUTOFF + pd.to_timedelta(minutes, unit="min"),
                "order_id": order,
                "product_code": product,
                "quantity": quantity,
                "amount": amount,
            }
        )
        log = pd.concat([log, added], ignore_index=True)
    log = log.sample(frac=1.0, random_state=shuffle % 2**32)  # row order does not matter
    pd.testing.assert_frame_equal(_features(log), _expected(), check_exact=False, rtol=1e-9)
