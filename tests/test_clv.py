"""Customer lifetime value: exactness of the discounted integral, unit safety, margins,
intervals (coverage on simulated data with known truth), the value table, and agreement with
lifetimes' month-by-month ``customer_lifetime_value``."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import hyp2f1

import custval
from custval import (
    BetaGeoModel,
    DataError,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    clv_interval,
    customer_lifetime_value,
    customer_value_table,
)
from custval._quadrature import ChebyshevOverT
from custval.clv import _resolve_terms
from custval.models import beta_geo
from custval.models._beta_geo_clv import BetaGeoKernel
from custval.models.pareto_nbd import ParetoNBDModel

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, CDNOW, weeks
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # FHL 2005 "RFM and CLV"


# --------------------------------------------------------------------------------- fixtures
def _read_cdnow(path) -> pd.DataFrame:
    raw = pd.read_csv(
        path, sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "amount"]
    )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "timestamp": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
            "amount": raw["amount"].astype(float),
        }
    )


@pytest.fixture(scope="module")
def cdnow_days(cdnow_sample_path) -> pd.DataFrame:
    """CDNOW calibration summary in days (purchases merged per day), calibration to 1997-09-30."""
    log = _read_cdnow(cdnow_sample_path)
    return custval.rfm_summary(log, freq="D", observation_end="1997-09-30")


@pytest.fixture(scope="module")
def cdnow_weeks(cdnow_days) -> pd.DataFrame:
    """The same summary with ages in weeks (days / 7): Hardie's CDNOW summary."""
    weeks = cdnow_days.copy()
    weeks["recency"] = weeks["recency"] / 7.0
    weeks["T"] = weeks["T"] / 7.0
    weeks.attrs = {**cdnow_days.attrs, "freq": "W"}
    return weeks


@pytest.fixture(scope="module")
def fitted_weeks(cdnow_weeks):
    return BetaGeoModel().fit(cdnow_weeks), GammaGammaModel().fit(cdnow_weeks)


def _summary(freq: str = "W") -> pd.DataFrame:
    summary = pd.DataFrame(
        {
            "frequency": [0.0, 2.0, 7.0, 1.0],
            "recency": [0.0, 30.43, 38.0, 5.0],
            "T": [38.86, 38.86, 38.86, 20.0],
            "monetary_value": [0.0, 30.0, 45.0, 12.0],
        },
        index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
    )
    summary.attrs["freq"] = freq
    return summary


def _published(freq: str = "W"):
    return (
        BetaGeoModel.from_params(**PUBLISHED_BG, freq=freq),
        GammaGammaModel.from_params(**PUBLISHED_GG, freq=freq),
    )


def _simulate(n: int, seed: int) -> pd.DataFrame:
    """BG/NBD purchases and Gamma-Gamma spend with the published CDNOW parameters (weeks)."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = PUBLISHED_BG.values()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    big_t = 39.0 - rng.integers(0, 84, n) / 7.0
    arrivals = rng.poisson(lam * big_t)
    x = np.minimum(arrivals, rng.geometric(p))
    buyer = x > 0
    t_x = np.zeros(n)
    t_x[buyer] = big_t[buyer] * rng.beta(x[buyer], arrivals[buyer] - x[buyer] + 1)
    nu = rng.gamma(PUBLISHED_GG["q"], 1.0 / PUBLISHED_GG["gamma"], n)
    m = np.zeros(n)
    m[buyer] = rng.gamma(PUBLISHED_GG["p"] * x[buyer], 1.0 / (nu[buyer] * x[buyer]))
    summary = pd.DataFrame(
        {"frequency": x.astype(float), "recency": t_x, "T": big_t, "monetary_value": m},
        index=pd.RangeIndex(n, name="customer_id"),
    )
    summary.attrs["freq"] = "W"
    return summary


# --------------------------------------------------------------------------------- exactness
def _rate_integral(params, x, big_t, horizon, delta):
    """Independent reference: adaptive quadrature of exp(-delta t) times the purchase *rate*
    given alive, E[lambda exp(-lambda p t)] = (r'/alpha') 2F1(r'+1, a; a+b'; -t/alpha')."""
    r, alpha, a, b = params
    rp, ap, bp = r + x, alpha + big_t, b + x

    def f(t):
        return math.exp(-delta * t) * rp / ap * hyp2f1(rp + 1, a, a + bp, -t / ap)

    if math.isinf(horizon):
        pieces = [0, 10, 100, 1000, 5000, 20000, 80000]
    else:
        pieces = [0, horizon]
    return sum(
        integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=400)[0]
        for lo, hi in itertools.pairwise(pieces)
    )


@pytest.mark.parametrize("horizon", ["4W", "12M", "520W", "inf"])
def test_discounted_purchases_match_adaptive_quadrature_of_the_rate(horizon):
    bg, _ = _published()
    summary = _summary()
    clv = customer_lifetime_value(bg, 1.0, summary, horizon=horizon, annual_discount_rate=0.10)
    delta = clv.attrs["continuous_discount_rate"]
    h = clv.attrs["horizon_periods"]
    params = np.array(list(PUBLISHED_BG.values()))
    alive = bg.probability_alive(summary).to_numpy()
    for i, (x, big_t) in enumerate(zip(summary["frequency"], summary["T"], strict=True)):
        expected = alive[i] * _rate_integral(params, x, big_t, h, delta)
        assert clv.iloc[i] == pytest.approx(expected, rel=1e-9)


def test_pareto_nbd_infinite_horizon_equals_closed_form_dert():
    model = ParetoNBDModel.from_params(r=0.553, alpha=10.578, s=0.606, beta=11.669, freq="W")
    summary = _summary()
    clv = customer_lifetime_value(model, 1.0, summary, horizon="inf", annual_discount_rate=0.15)
    dert = model.discounted_expected_residual_transactions(summary, annual_discount_rate=0.15)
    np.testing.assert_allclose(clv.to_numpy(), dert.to_numpy(), rtol=1e-8)


@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel])
def test_zero_discount_equals_expected_purchases_times_spend_times_margin(model_class):
    model = model_class.from_params(**PUBLISHED_BG, freq="W")
    _, gg = _published()
    summary = _summary()
    table = customer_value_table(
        model, gg, summary, horizon="26W", annual_discount_rate=0.0, margin=0.3, n_draws=0
    )
    expected = (
        model.expected_purchases(summary, 26.0) * gg.expected_spend(summary) * 0.3
    ).to_numpy()
    np.testing.assert_allclose(table["clv"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        table["clv"], table["expected_purchases"] * table["expected_spend"] * 0.3, rtol=1e-12
    )


def test_discounting_lowers_value_and_longer_horizons_raise_it():
    bg, gg = _published()
    summary = _summary()
    values = [
        customer_lifetime_value(bg, gg, summary, horizon=h, annual_discount_rate=rate).sum()
        for h, rate in [("12M", 0.0), ("12M", 0.1), ("12M", 0.3), ("24M", 0.1), ("inf", 0.1)]
    ]
    assert values[0] > values[1] > values[2]
    assert values[1] < values[3] < values[4]


def test_grid_converges_to_the_exact_integral_as_the_step_shrinks():
    bg, gg = _published()
    summary = _summary()
    exact = customer_lifetime_value(bg, gg, summary, horizon="52W", annual_discount_rate=0.2)
    errors = []
    for step in ["13W", "4W", "1W", "1D", "1h"]:
        grid = customer_lifetime_value(
            bg, gg, summary, horizon="52W", annual_discount_rate=0.2, step=step
        )
        errors.append(float(np.max(np.abs(grid / exact - 1.0))))
        assert grid.attrs["method"].startswith(f"grid of {step} steps")
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    # end-of-step discounting errs by about delta * step / 2: first order in the step
    assert errors[0] > 0.003
    assert errors[-1] < 2e-5
    assert errors[1] / errors[2] == pytest.approx(4.0, rel=0.1)


def test_chebyshev_interpolation_over_t_matches_exact_evaluation():
    model, _ = _published()
    terms = _resolve_terms(model, None, _summary(), "12M", 0.1, None)
    kernel = BetaGeoKernel(model, terms)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 30, 4000).astype(float)
    big_t = rng.uniform(0.1, 78.0, 4000)
    theta = np.array([0.3, 3.0, 0.9, 2.0])

    def exact(xx, tt):
        return kernel.discounted_if_alive(theta, xx, tt)

    interpolate = ChebyshevOverT(x, big_t, min_scale=3.0)
    assert interpolate.by_grid.any()  # the interpolation path is exercised
    np.testing.assert_allclose(interpolate(exact, 3.0), exact(x, big_t), rtol=1e-7)
    # the table the draws use (fewer quadrature nodes, interpolation, float32) vs exact
    rows = {"frequency": x, "recency": np.minimum(big_t, x), "T": big_t}
    thetas = np.array([theta, theta * 1.1, theta * 0.9])
    kernel.prepare_draws(thetas, rows)
    for d, draw in enumerate(thetas):
        reference = kernel.discounted_if_alive(draw, x, big_t)
        np.testing.assert_allclose(kernel._pair_table[kernel._pair_of_row, d], reference, rtol=1e-6)


@pytest.mark.parametrize("modified", [False, True])
def test_vectorized_p_alive_over_draws_equals_the_model_module(modified):
    model_class = ModifiedBetaGeoModel if modified else BetaGeoModel
    model = model_class.from_params(**PUBLISHED_BG, freq="W")
    terms = _resolve_terms(model, None, _summary(), "12M", 0.1, None)
    kernel = BetaGeoKernel(model, terms)
    rng = np.random.default_rng(0)
    n = 500
    x = rng.integers(0, 12, n).astype(float)
    big_t = rng.uniform(1, 40, n)
    t_x = np.where(x > 0, big_t * rng.uniform(0.01, 1, n), 0.0)
    rows = {"frequency": x, "recency": t_x, "T": big_t}
    thetas = np.array(list(PUBLISHED_BG.values())) * np.exp(rng.normal(0, 0.2, (7, 4)))
    kernel.prepare_draws(thetas, rows)
    values = kernel.p_alive_draws(thetas, slice(0, n))
    for d, theta in enumerate(thetas):
        reference = beta_geo._probability_alive(theta, x, t_x, big_t, modified=modified)
        np.testing.assert_allclose(values[:, d], reference, rtol=2e-5, atol=1e-7)


def test_public_method_path_agrees_with_the_closed_form_path():
    """A model custval has no kernel for is valued by quadrature of its public
    expected_purchases; wrapping BG/NBD that way must give the same CLV."""

    class Wrapped:
        _display_name = "wrapped BG/NBD"

        def __init__(self, inner):
            self.inner = inner
            self.params_ = inner.params_
            self.freq_ = inner.freq_

        def expected_purchases(self, summary, t):
            inner = BetaGeoModel.from_params(**self.params_.to_dict(), freq=self.freq_)
            return inner.expected_purchases(summary, t)

        def probability_alive(self, summary):
            return self.inner.probability_alive(summary)

    bg, gg = _published()
    summary = _summary()
    direct = customer_lifetime_value(bg, gg, summary, horizon="12M")
    wrapped = customer_lifetime_value(Wrapped(bg), gg, summary, horizon="12M")
    np.testing.assert_allclose(wrapped.to_numpy(), direct.to_numpy(), rtol=1e-10)
    with pytest.raises(DataError, match="horizon='inf' needs a closed form"):
        customer_lifetime_value(Wrapped(bg), gg, summary, horizon="inf")


# --------------------------------------------------------------------------------- units
def test_same_data_in_days_and_weeks_gives_the_same_value(cdnow_days, cdnow_weeks):
    days = customer_lifetime_value(
        BetaGeoModel().fit(cdnow_days),
        GammaGammaModel().fit(cdnow_days),
        cdnow_days,
        horizon="12M",
        annual_discount_rate=0.10,
    )
    weeks = customer_lifetime_value(
        BetaGeoModel().fit(cdnow_weeks),
        GammaGammaModel().fit(cdnow_weeks),
        cdnow_weeks,
        horizon="365D",
        annual_discount_rate=0.10,
    )
    weeks_12m = customer_lifetime_value(
        BetaGeoModel().fit(cdnow_weeks),
        GammaGammaModel().fit(cdnow_weeks),
        cdnow_weeks,
        horizon="12M",
        annual_discount_rate=0.10,
    )
    assert days.attrs["horizon_periods"] == pytest.approx(365.2425)
    assert weeks_12m.attrs["horizon_periods"] == pytest.approx(365.2425 / 7)
    np.testing.assert_allclose(weeks_12m.to_numpy(), days.to_numpy(), rtol=2e-4)
    # 365 days is a little shorter than 12 months: a little less value, in both units
    assert weeks.sum() < weeks_12m.sum()
    assert days.attrs["discount_rate_per_period"] == pytest.approx(1.1 ** (1 / 365.2425) - 1)


def test_refuses_missing_or_inconsistent_units():
    bg, gg = _published()
    summary = _summary()
    no_unit = summary.copy()
    no_unit.attrs = {}
    with pytest.raises(DataError, match=r"summary.attrs\['freq'\] is missing"):
        customer_lifetime_value(bg, gg, no_unit)
    with pytest.raises(DataError, match="fitted in unit 'W' but the summary is in unit 'D'"):
        customer_lifetime_value(bg, gg, _summary("D"))
    unknown = BetaGeoModel.from_params(**PUBLISHED_BG)
    with pytest.raises(DataError, match=r"does not record the time unit.*freq_ is None"):
        customer_lifetime_value(unknown, gg, summary)
    daily_spend = GammaGammaModel.from_params(**PUBLISHED_GG, freq="D")
    with pytest.raises(DataError, match="fit both models on summaries in the same unit"):
        customer_lifetime_value(bg, daily_spend, summary)
    with pytest.raises(DataError, match="has no unit"):
        customer_lifetime_value(bg, gg, summary, horizon=12)
    with pytest.raises(DataError, match="cannot read duration"):
        customer_lifetime_value(bg, gg, summary, horizon="twelve months")
    with pytest.raises(DataError, match="infinite horizon needs a positive annual_discount_rate"):
        customer_lifetime_value(bg, gg, summary, horizon="inf", annual_discount_rate=0.0)
    with pytest.raises(DataError, match="write rates as fractions"):
        customer_lifetime_value(bg, gg, summary, annual_discount_rate=10)
    with pytest.raises(DataError, match="step= sums over a time grid and needs a finite"):
        customer_lifetime_value(bg, gg, summary, horizon="inf", step="1M")
    with pytest.raises(DataError, match="horizon must be positive"):
        customer_lifetime_value(bg, gg, summary, horizon="0W")


# --------------------------------------------------------------------------------- margin
def test_margin_as_fraction_column_or_series():
    bg, gg = _published()
    summary = _summary()
    revenue = customer_lifetime_value(bg, gg, summary)
    assert revenue.attrs["value_basis"] == "revenue"
    contribution = customer_lifetime_value(bg, gg, summary, margin=0.25)
    assert contribution.attrs["value_basis"] == "contribution"
    np.testing.assert_allclose(contribution, 0.25 * revenue, rtol=1e-14)
    margins = pd.Series([0.1, 0.2, 0.3, 0.4], index=summary.index[::-1])
    by_series = customer_lifetime_value(bg, gg, summary, margin=margins)
    np.testing.assert_allclose(by_series, revenue * margins.reindex(summary.index), rtol=1e-14)
    with_column = summary.assign(margin=[0.5, 0.5, 0.2, 0.2])
    by_column = customer_lifetime_value(bg, gg, with_column, margin="margin")
    assert by_column.attrs["margin"] == "column 'margin'"
    np.testing.assert_allclose(by_column, revenue * [0.5, 0.5, 0.2, 0.2], rtol=1e-14)
    assert "margin" not in summary.columns  # the input is not modified


def test_margin_refusals():
    bg, gg = _published()
    summary = _summary()
    with pytest.raises(
        DataError, match=r"margin must be a fraction of revenue in \(0, 1\], got 30"
    ):
        customer_lifetime_value(bg, gg, summary, margin=30)
    with pytest.raises(DataError, match=r"missing required column.*'margin_pct'"):
        customer_lifetime_value(bg, gg, summary, margin="margin_pct")
    bad = summary.assign(m=[0.2, 1.5, 0.2, 0.2])
    with pytest.raises(DataError, match=r"column 'm' has 1 margins outside \(0, 1\] \(rows b"):
        customer_lifetime_value(bg, gg, bad, margin="m")
    partial = pd.Series([0.2, 0.2], index=["a", "b"])
    with pytest.raises(DataError, match=r"margin Series has no value for 2 customers"):
        customer_lifetime_value(bg, gg, summary, margin=partial)


# --------------------------------------------------------------------------------- lifetimes
def _lifetimes_clv(bg, gg, summary, freq, discount_rate):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(bg.params_.to_dict())
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series({"p": gg.params_["p"], "q": gg.params_["q"], "v": gg.params_["gamma"]})
    return ggf.customer_lifetime_value(
        bgf,
        summary["frequency"],
        summary["recency"],
        summary["T"],
        summary["monetary_value"],
        time=12,
        discount_rate=discount_rate,
        freq=freq,
    )


@pytest.mark.parametrize("freq", ["W", "D"])
def test_agrees_with_lifetimes_month_by_month_loop(fitted_weeks, cdnow_weeks, cdnow_days, freq):
    """lifetimes takes a *monthly* rate and hard-codes a month as 4.345 weeks or 30 days; with
    the same step, horizon and the equivalent annual rate custval reproduces it exactly."""
    if freq == "W":
        bg, gg = fitted_weeks
        summary = cdnow_weeks
        month = "4.345W"
        months_per_year = 365.2425 / 7 / 4.345
    else:
        summary = cdnow_days
        bg, gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
        month = "30D"
        months_per_year = 365.2425 / 30
    monthly = 0.01
    reference = _lifetimes_clv(bg, gg, summary, freq, monthly)
    annual = (1 + monthly) ** months_per_year - 1
    horizon = f"{12 * float(month[:-1])}{month[-1]}"
    grid = customer_lifetime_value(
        bg, gg, summary, horizon=horizon, annual_discount_rate=annual, step=month
    )
    np.testing.assert_allclose(grid.to_numpy(), reference.to_numpy(), rtol=1e-9)
    exact = customer_lifetime_value(bg, gg, summary, horizon=horizon, annual_discount_rate=annual)
    # continuous discounting values each month's purchases ~half a month earlier: ~ +0.5%
    assert exact.sum() / reference.sum() - 1 == pytest.approx(0.005, abs=0.0015)


# --------------------------------------------------------------------------------- intervals
def test_intervals_are_reproducible_ordered_and_chunk_invariant(fitted_weeks, cdnow_weeks):
    bg, gg = fitted_weeks
    first = clv_interval(bg, gg, cdnow_weeks, random_state=7, n_draws=100, progress=False)
    again = clv_interval(
        bg, gg, cdnow_weeks, random_state=7, n_draws=100, chunk_size=97, progress=False
    )
    other = clv_interval(bg, gg, cdnow_weeks, random_state=8, n_draws=100, progress=False)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["clv_upper"], other["clv_upper"])
    assert (first["clv_lower"] <= first["clv_median"]).all()
    assert (first["clv_median"] <= first["clv_upper"]).all()
    assert (first["clv_lower"] < first["clv_upper"]).all()
    point = customer_lifetime_value(bg, gg, cdnow_weeks)
    inside = (first["clv_lower"] <= point) & (point <= first["clv_upper"])
    assert inside.mean() > 0.95
    assert first.attrs["interval"] == 0.8 and first.attrs["n_draws"] == 100


def test_wider_interval_and_margin_scaling(fitted_weeks, cdnow_weeks):
    bg, gg = fitted_weeks
    narrow = clv_interval(bg, gg, cdnow_weeks, interval=0.5, n_draws=100, progress=False)
    wide = clv_interval(bg, gg, cdnow_weeks, interval=0.95, n_draws=100, progress=False)
    assert (wide["clv_upper"] >= narrow["clv_upper"]).all()
    assert (wide["clv_lower"] <= narrow["clv_lower"]).all()
    half = clv_interval(bg, gg, cdnow_weeks, margin=0.5, n_draws=100, progress=False)
    full = clv_interval(bg, gg, cdnow_weeks, n_draws=100, progress=False)
    np.testing.assert_allclose(half.to_numpy(), 0.5 * full.to_numpy(), rtol=1e-12)


def test_interval_refusals():
    bg, gg = _published()
    summary = _summary()
    with pytest.raises(DataError, match="has no variance matrix"):
        clv_interval(bg, gg, summary, n_draws=50)
    with pytest.raises(DataError, match="n_draws=5 is too few"):
        clv_interval(bg, gg, summary, n_draws=5)
    with pytest.raises(DataError, match=r"interval must lie in \(0, 1\), got 80; 0.8 for the 10th"):
        clv_interval(bg, gg, summary, interval=80)
    empty = clv_interval(bg, gg, summary, n_draws=0)
    assert empty.isna().all().all()


@pytest.mark.slow
def test_nominal_80_percent_intervals_cover_the_true_expected_value_80_percent_of_the_time():
    """'True' value: the CLV under the *true* parameters given each customer's simulated
    history (its expectation, not the realized spend). Coverage is correlated across customers
    of one data set (they share one parameter estimate), so it is averaged over data sets."""
    true_bg, true_gg = _published()
    coverage = []
    for seed in range(10):
        summary = _simulate(3000, seed)
        bg, gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
        truth = customer_lifetime_value(true_bg, true_gg, summary)
        band = clv_interval(bg, gg, summary, random_state=seed, progress=False)
        covered = (band["clv_lower"] <= truth) & (truth <= band["clv_upper"])
        coverage.append(float(covered.mean()))
    assert 0.70 <= np.mean(coverage) <= 0.90, coverage


# --------------------------------------------------------------------------------- the table
def test_value_table_contract(fitted_weeks, cdnow_weeks):
    bg, gg = fitted_weeks
    before = cdnow_weeks.copy()
    table = customer_value_table(bg, gg, cdnow_weeks, margin=0.3, n_draws=50, progress=False)
    pd.testing.assert_frame_equal(cdnow_weeks, before)  # the input is not modified
    assert list(table.columns) == [
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "clv",
        "clv_lower",
        "clv_median",
        "clv_upper",
        "value_rank",
        "value_decile",
        "segment",
    ]
    assert table.index.equals(cdnow_weeks.index)
    for key in ("freq", "horizon", "annual_discount_rate", "margin", "interval", "value_basis"):
        assert key in table.attrs
    assert table.attrs["value_basis"] == "contribution"
    assert table.attrs["horizon"] == "12M" and table.attrs["freq"] == "W"
    assert table.loc[table["value_rank"] == 1, "clv"].iloc[0] == table["clv"].max()
    assert sorted(table["value_rank"]) == list(range(1, len(table) + 1))
    assert table["value_decile"].between(1, 10).all()
    top = table[table["value_decile"] == 1]
    assert len(top) == math.ceil(len(table) / 10)
    assert top["clv"].min() >= table.loc[table["value_decile"] == 2, "clv"].max()
    np.testing.assert_allclose(table["p_alive"], bg.probability_alive(cdnow_weeks))
    np.testing.assert_allclose(table["expected_spend"], gg.expected_spend(cdnow_weeks))
    np.testing.assert_allclose(
        table["clv"], customer_lifetime_value(bg, gg, cdnow_weeks, margin=0.3), rtol=1e-14
    )
    segments = custval.rfm_segments(cdnow_weeks)["segment"]
    assert (table["segment"].astype(str) == segments.astype(str)).all()
    no_segments = customer_value_table(bg, gg, cdnow_weeks, segments=False, n_draws=0)
    assert no_segments["segment"].isna().all()
    assert no_segments.attrs["value_basis"] == "revenue"


def test_infinite_horizon_table_reports_discounted_purchases():
    bg, gg = _published()
    table = customer_value_table(bg, gg, _summary(), horizon="inf", n_draws=0, segments=False)
    assert table.attrs["horizon"] == "inf"
    assert "discounted" in table.attrs["expected_purchases"]
    np.testing.assert_allclose(
        table["clv"], table["expected_purchases"] * table["expected_spend"], rtol=1e-12
    )


def test_fixed_spend_and_spend_series():
    bg, _ = _published()
    summary = _summary()
    fixed = customer_lifetime_value(bg, 40.0, summary)
    purchases = customer_lifetime_value(bg, 1.0, summary)
    np.testing.assert_allclose(fixed, 40.0 * purchases, rtol=1e-14)
    spend = pd.Series([10.0, 20.0, 30.0, 40.0], index=summary.index)
    np.testing.assert_allclose(
        customer_lifetime_value(bg, spend, summary), spend * purchases, rtol=1e-14
    )
    with pytest.raises(DataError, match="spend_model must be a fitted spend model"):
        customer_lifetime_value(bg, "gamma-gamma", summary)


def test_a_fixed_spend_needs_no_monetary_value_but_a_spend_model_and_the_table_do(
    fitted_weeks, cdnow_weeks
):
    bg, gg = fitted_weeks
    summary = cdnow_weeks.iloc[:300]
    counts = summary.drop(columns="monetary_value")
    spend = pd.Series(np.linspace(10.0, 40.0, len(summary)), index=summary.index)
    for fixed in (40.0, spend):
        pd.testing.assert_series_equal(
            customer_lifetime_value(bg, fixed, counts), customer_lifetime_value(bg, fixed, summary)
        )
        pd.testing.assert_frame_equal(
            clv_interval(bg, fixed, counts, n_draws=30, progress=False),
            clv_interval(bg, fixed, summary, n_draws=30, progress=False),
        )
    missing = r"missing required column\(s\) 'monetary_value'"
    with pytest.raises(DataError, match=missing):
        customer_lifetime_value(bg, gg, counts)
    with pytest.raises(DataError, match=missing):
        customer_value_table(bg, 40.0, counts, n_draws=30, progress=False)
