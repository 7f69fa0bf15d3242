"""Tests of custval.datasets: the simulated retailer, its files, the CLI and the public loaders."""

from __future__ import annotations

import gzip
import io
import json
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

import custval
from conftest import shared_file
from custval import datasets
from custval.cli import main
from custval.datasets import (
    RetailerParameters,
    SimulatedRetailer,
    _retailer,
    _simulate,
    load_cdnow,
    load_donations,
    load_online_retail,
    load_sample,
    load_simulated,
    simulate,
)
from custval.errors import DataError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
FILES = [
    "transactions.csv.gz",
    "customers.csv.gz",
    "campaign.csv.gz",
    "customer_truth.csv.gz",
    "truth.json",
]


@pytest.fixture(scope="module")
def small() -> SimulatedRetailer:
    return simulate(n_customers=800, random_state=11)


@pytest.fixture(scope="module")
def large() -> SimulatedRetailer:
    return simulate(n_customers=20_000, random_state=2024)


def _orders(sim: SimulatedRetailer) -> pd.DataFrame:
    """Customer order lines: no guests, no duplicates, no returns."""
    t = sim.transactions.drop_duplicates()
    return t[t["customer_id"].notna() & ~t["order_id"].str.startswith("C")]


def _campaign_outcomes(sim: SimulatedRetailer) -> pd.DataFrame:
    """Outcomes over the window, measured from transactions as truth['campaign'] defines them."""
    campaign = sim.campaign.set_index("customer_id")
    start = campaign["contact_date"].iloc[0]
    stop = start + pd.Timedelta(days=sim.truth["campaign"]["window_days"])
    lines = _orders(sim)
    window = lines[(lines["timestamp"] >= start) & (lines["timestamp"] < stop)]
    orders = window.groupby("customer_id")["order_id"].nunique().reindex(campaign.index)
    revenue = (
        window[window["product_code"] != "POST"]
        .groupby("customer_id")["amount"]
        .sum()
        .reindex(campaign.index)
    )
    out = campaign[["treatment", "segment"]].copy()
    out["orders"] = orders.fillna(0).to_numpy()
    out["purchase"] = (out["orders"] > 0).astype(float)
    out["revenue"] = revenue.fillna(0.0).to_numpy()
    return out


# --- the simulation ------------------------------------------------------------------------------


def test_public_api_exported():
    for name in datasets.__all__:
        assert name in custval.__all__
        assert getattr(custval, name) is getattr(datasets, name)


def test_tables_have_the_documented_schema(small):
    t = small.transactions
    assert list(t.columns) == [
        "order_id",
        "customer_id",
        "timestamp",
        "product_code",
        "quantity",
        "unit_price",
        "amount",
    ]
    assert t["customer_id"].dtype == "Int64"
    assert t["timestamp"].dtype == "datetime64[ns]"
    assert t["quantity"].dtype == np.int64
    assert list(small.customers.columns) == [
        "customer_id",
        "acquisition_date",
        "channel",
        "region",
        "acquisition_cost",
        "loyalty_member",
        "loyalty_join_date",
    ]
    assert list(small.campaign.columns) == [
        "customer_id",
        "treatment",
        "contact_date",
        "cost_per_contact",
        "segment",
    ]
    assert len(small.customers) == len(small.campaign) == len(small.customer_truth) == 800
    assert set(small.campaign["treatment"]) == {0, 1}
    assert set(small.customers["channel"]) == {"search", "social", "referral", "affiliate"}
    # amounts are quantity x unit price to the cent, and the period is respected
    assert np.allclose(t["amount"], (t["quantity"] * t["unit_price"]).round(2), atol=1e-9)
    assert t["timestamp"].min() >= pd.Timestamp("2022-01-01")
    assert t["timestamp"].max() < pd.Timestamp("2025-01-01")


def test_transactions_agree_with_the_truth(small):
    lines = _orders(small)
    truth = small.customer_truth.set_index("customer_id")
    n_orders = lines.groupby("customer_id")["order_id"].nunique()
    assert n_orders.reindex(truth.index).fillna(0).astype(int).equals(truth["n_orders"])
    first = lines.groupby("customer_id")["timestamp"].min().dt.normalize()
    customers = small.customers.set_index("customer_id")
    assert (first.reindex(customers.index) == customers["acquisition_date"]).all()
    # dropout happens right after the last order; the alive have no dropout date
    last = lines.groupby("customer_id")["timestamp"].max().dt.normalize()
    dead = truth[~truth["alive_at_end"]]
    assert (last.reindex(dead.index) == dead["dropout_date"]).all()
    assert truth.loc[truth["alive_at_end"], "dropout_date"].isna().all()
    assert (truth.loc[~truth["alive_at_end"], "expected_orders_next_365d"] == 0).all()
    # loyalty members joined on a day they ordered, and only members have a join date
    joined = customers.dropna(subset=["loyalty_join_date"])
    assert joined["loyalty_member"].all()
    assert not customers.loc[customers["loyalty_join_date"].isna(), "loyalty_member"].any()
    days = set(zip(lines["customer_id"], lines["timestamp"].dt.normalize(), strict=True))
    assert all(
        (cid, day) in days
        for cid, day in zip(joined.index, joined["loyalty_join_date"], strict=True)
    )
    # the campaign segment is the loyalty status at the contact date
    contact = small.campaign["contact_date"].iloc[0]
    member = (customers["loyalty_join_date"] < contact).to_numpy()
    assert (np.where(member, "member", "non_member") == small.campaign["segment"]).all()
    assert (small.customer_truth["member_at_contact"].to_numpy() == member).all()


def test_dirty_rows_are_counted_in_truth(small):
    t = small.transactions
    dirty = small.truth["dirty"]
    assert int(t.duplicated().sum()) == dirty["duplicate_lines"] > 0
    assert int(t["customer_id"].isna().sum()) == dirty["lines_missing_customer_id"] > 0
    assert int((t["amount"] == 0).sum()) == dirty["zero_amount_lines"] > 0
    assert int((t["product_code"] == "POST").sum()) == dirty["postage_lines"] > 0
    returns = t[t["order_id"].str.startswith("C")]
    assert len(returns) == dirty["return_lines"] > 0
    assert (returns["amount"] < 0).all() and (returns["quantity"] < 0).all()
    assert len(t) == small.truth["counts"]["transaction_lines"]
    # every dirty kind stays a small share of the lines
    assert sum(v for k, v in dirty.items() if k.endswith("_share_of_lines")) < 0.1


def test_returns_reference_an_earlier_purchase_of_the_same_customer_and_product(small):
    t = small.transactions.drop_duplicates()
    returns = t[t["order_id"].str.startswith("C")]
    bought = t[~t["order_id"].str.startswith("C")]
    merged = returns.assign(order_id=returns["order_id"].str[1:]).merge(
        bought, on=["order_id", "product_code"], suffixes=("_ret", "")
    )
    assert len(merged) == len(returns)
    assert (merged["customer_id_ret"] == merged["customer_id"]).all()
    assert (merged["timestamp_ret"] > merged["timestamp"]).all()
    assert (-merged["quantity_ret"] <= merged["quantity"]).all()
    assert (merged["unit_price_ret"] == merged["unit_price"]).all()


def test_same_seed_same_data_different_seed_different_data():
    a = simulate(n_customers=300, random_state=5)
    b = simulate(n_customers=300, random_state=5)
    c = simulate(n_customers=300, random_state=6)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert a.truth == b.truth
    assert not a.transactions.equals(c.transactions)
    assert not a.customer_truth.equals(c.customer_truth)


def test_write_is_byte_for_byte_reproducible_and_round_trips(tmp_path):
    first = simulate(n_customers=300, random_state=5)
    paths_a = first.write(tmp_path / "a")
    paths_b = simulate(n_customers=300, random_state=5).write(tmp_path / "b")
    simulate(n_customers=300, random_state=6).write(tmp_path / "c")
    assert [p.name for p in paths_a] == FILES
    for pa, pb in zip(paths_a, paths_b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    assert (tmp_path / "a" / "transactions.csv.gz").read_bytes() != (
        tmp_path / "c" / "transactions.csv.gz"
    ).read_bytes()
    # gzip header: no file name, mtime 0
    raw = (tmp_path / "a" / "customers.csv.gz").read_bytes()
    assert raw[3] & 0x08 == 0 and raw[4:8] == b"\x00\x00\x00\x00"
    loaded = load_simulated(tmp_path / "a")
    for name in first.tables:
        pd.testing.assert_frame_equal(loaded.tables[name], first.tables[name])
    assert loaded.truth == first.truth
    assert loaded.observation_end == pd.Timestamp("2024-12-31")


def test_write_leaves_other_files_alone(tmp_path):
    (tmp_path / "README.md").write_text("keep me")
    simulate(n_customers=50, random_state=1).write(tmp_path)
    assert (tmp_path / "README.md").read_text() == "keep me"


def test_truth_records_parameters_seed_and_definitions(small):
    truth = small.truth
    assert truth["seed"] == 11
    assert truth["generator_version"] == datasets.GENERATOR_VERSION
    assert truth["time_unit"] == "D"
    assert truth["parameters"] == RetailerParameters().to_dict()
    assert truth["purchase_process"]["r"] == 0.75
    assert truth["spend"]["population_mean_order_value"] == 40.0
    assert truth["period"]["contact_date"] == "2024-01-01"
    assert truth["campaign"]["responsive_segment"] == "non_member"
    assert "contact_date + 90 days" in truth["campaign"]["outcomes"]["purchase"]
    assert truth["command"].startswith("custval simulate --out DIR --customers 800 --seed 11")
    json.dumps(truth, allow_nan=False)  # JSON-ready, no NaN
    assert simulate(n_customers=50, params=RetailerParameters.plain()).truth["command"] is None


def test_campaign_is_randomized_within_segment(small):
    for _, group in small.campaign.groupby("segment"):
        assert abs(group["treatment"].sum() - len(group) / 2) <= 0.5
    # randomization is unrelated to the latent state
    truth = small.customer_truth
    treated = small.campaign["treatment"].to_numpy() == 1
    rate = truth["purchase_rate"].to_numpy()
    assert abs(np.log(rate[treated].mean() / rate[~treated].mean())) < 0.2


def test_loyalty_membership_is_self_selected(small):
    truth = small.customer_truth
    member = small.customers["loyalty_member"].to_numpy()
    # members were heavier buyers before they joined: a naive comparison is biased
    assert truth["purchase_rate"][member].mean() > 1.5 * truth["purchase_rate"][~member].mean()
    assert 0.1 < member.mean() < 0.5
    att = small.truth["loyalty"]["att_orders_365d"]
    assert att == pytest.approx(truth["loyalty_effect_orders_365d"][member].mean(), abs=1e-5)
    assert att > 0


@pytest.mark.slow
def test_generator_matches_bgnbd_and_gamma_gamma_theory():
    """Without attribute effects the data follow BG/NBD + Gamma-Gamma with the stated values."""
    params = RetailerParameters.plain()
    sim = simulate(n_customers=20_000, random_state=3, params=params)
    truth = sim.customer_truth
    n = len(truth)
    lam = truth["purchase_rate"].to_numpy()
    p = truth["dropout_prob"].to_numpy()
    # parameter draws
    assert lam.mean() == pytest.approx(params.r / params.alpha, rel=0.04)
    assert lam.var() == pytest.approx(params.r / params.alpha**2, rel=0.1)
    assert p.mean() == pytest.approx(params.a / (params.a + params.b), rel=0.02)
    # repeat purchases: conditional (given lambda, p) and population (Fader et al. 2005, eq. 9)
    end = pd.Timestamp(sim.truth["period"]["end"]) + pd.Timedelta(days=1)
    first = _orders(sim).groupby("customer_id")["timestamp"].min().reindex(truth["customer_id"])
    age = ((end - first).dt.total_seconds() / 86_400).to_numpy()
    repeat = truth["n_orders"].to_numpy() - 1
    se = repeat.std() / np.sqrt(n)
    conditional = (1.0 - np.exp(-lam * p * age)) / p
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    population = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + age)) ** r * hyp2f1(r, b, a + b - 1, age / (alpha + age)))
    )
    assert abs(repeat.mean() - conditional.mean()) < 4 * se
    assert abs(repeat.mean() - population.mean()) < 4 * se
    # share alive at the end: P(alive | lambda, p) = exp(-lambda p T)
    alive = truth["alive_at_end"].to_numpy()
    p_alive = np.exp(-lam * p * age)
    assert abs(alive.mean() - p_alive.mean()) < 4 * np.sqrt(p_alive.mean() / n)
    # spend: order value / (p_s / nu) ~ Gamma(p_s, p_s): mean 1, variance 1 / p_s
    lines = _orders(sim)
    merch = lines[lines["product_code"] != "POST"]
    orders = merch.groupby("order_id").agg(value=("amount", "sum"), cid=("customer_id", "first"))
    mean_value = truth.set_index("customer_id")["mean_order_value"]
    ratio = orders["value"].to_numpy() / mean_value.reindex(orders["cid"]).to_numpy()
    assert ratio.mean() == pytest.approx(1.0, abs=4 * np.sqrt(1 / params.spend_p / len(ratio)))
    assert ratio.var() == pytest.approx(1.0 / params.spend_p, rel=0.05)
    theory = params.spend_p * params.spend_gamma / (params.spend_q - 1)
    assert truth["mean_order_value"].mean() == pytest.approx(theory, rel=0.03)


@pytest.mark.slow
def test_campaign_difference_in_means_recovers_the_true_effect(large):
    outcomes = _campaign_outcomes(large)
    segments = large.truth["campaign"]["segments"]
    for segment in ("non_member", "member"):
        group = outcomes[outcomes["segment"] == segment]
        for outcome, key in (
            ("purchase", "effect_purchase"),
            ("orders", "effect_orders"),
            ("revenue", "effect_revenue"),
        ):
            treated = group.loc[group["treatment"] == 1, outcome]
            control = group.loc[group["treatment"] == 0, outcome]
            diff = treated.mean() - control.mean()
            se = np.sqrt(treated.var() / len(treated) + control.var() / len(control))
            true = segments[segment][key]
            assert abs(diff - true) < 4 * se, (segment, outcome, diff, true, se)
        # the control mean matches the expected control potential outcome
        control = group.loc[group["treatment"] == 0, "purchase"]
        expected = segments[segment]["purchase_prob_control"]
        assert abs(control.mean() - expected) < 4 * control.std() / np.sqrt(len(control))
    # one clearly responsive segment, one near zero
    assert segments["non_member"]["effect_purchase"] > 0.06
    assert abs(segments["member"]["effect_purchase"]) < 0.02
    assert segments["non_member"]["incremental_gross_profit_per_contact"] > 0
    assert segments["member"]["incremental_gross_profit_per_contact"] < 0


def test_expected_purchasing_limits():
    lam = np.array([0.02, 0.01])
    p = np.array([0.1, 0.3])
    # without joining: the BG/NBD conditional expectation (1 - exp(-lambda p t)) / p
    plain = _simulate._expected_purchasing(lam, p, lam, p, np.zeros(2, bool), 0.0, 200.0)
    assert np.allclose(plain["orders"], (1 - np.exp(-lam * p * 200)) / p)
    assert np.allclose(plain["alive"], np.exp(-lam * p * 200))
    # joining with rates that make mu_A == mu_B uses the limit of the divided difference
    lam_m, p_m = np.array([0.02]), np.array([0.1])
    equal = _simulate._expected_purchasing(
        np.array([0.02]), np.array([0.0]), lam_m, p_m, np.array([False]), 0.1, 200.0
    )
    near = _simulate._expected_purchasing(
        np.array([0.02]), np.array([1e-9]), lam_m, p_m, np.array([False]), 0.1, 200.0
    )
    assert np.allclose(equal["orders"], near["orders"], rtol=1e-6)
    assert np.allclose(equal["alive"], near["alive"], rtol=1e-6)


def test_plain_parameters_switch_off_every_effect():
    plain = RetailerParameters.plain()
    sim = simulate(n_customers=400, random_state=2, params=plain)
    assert not sim.customers["loyalty_member"].any()
    assert (sim.customer_truth["campaign_effect_purchase"] == 0).all()
    assert sim.truth["campaign"]["segments"]["non_member"]["effect_revenue"] == 0


def test_simulate_rejects_bad_input():
    with pytest.raises(DataError, match="n_customers must be a positive integer, got 0"):
        simulate(n_customers=0)
    with pytest.raises(DataError, match="n_customers must be a positive integer"):
        simulate(n_customers=10.5)
    with pytest.raises(DataError, match="needs at least 270"):
        simulate(start="2024-01-01", end="2024-03-01")
    with pytest.raises(DataError, match="start must be a date"):
        simulate(start="not a date")
    with pytest.raises(DataError, match="contact_date '2030-01-01' must fall after start"):
        simulate(contact_date="2030-01-01")
    bad_shares = replace(RetailerParameters(), regions={"north": {"share": 0.5}})
    with pytest.raises(DataError, match="shares of parameter 'regions' must sum to 1"):
        simulate(params=bad_shares)
    with pytest.raises(DataError, match="'loyalty_join_prob' must be a probability"):
        simulate(params=replace(RetailerParameters(), loyalty_join_prob=1.5))
    with pytest.raises(DataError, match="params must be a RetailerParameters"):
        simulate(params={"r": 1.0})


# --- the committed sample ------------------------------------------------------------------------


def test_load_sample_reads_the_committed_sample():
    sample = load_sample()
    assert sample.truth["n_customers"] == len(sample.customers) == 5000
    assert sample.truth["seed"] == 0
    assert sum((SAMPLE / name).stat().st_size for name in FILES) < 5_000_000


@pytest.mark.slow
def test_committed_sample_regenerates_byte_for_byte(tmp_path):
    command = load_sample().truth["command"]
    assert command == (
        "custval simulate --out DIR --customers 5000 --seed 0 --start 2022-01-01 --end 2024-12-31"
    )
    args = command.split()[1:]
    assert main([a if a != "DIR" else str(tmp_path) for a in args]) == 0
    for name in FILES:
        fresh, committed = (tmp_path / name).read_bytes(), (SAMPLE / name).read_bytes()
        if name.endswith(".gz"):
            assert gzip.decompress(fresh) == gzip.decompress(committed), name
        assert fresh == committed, name


def test_load_sample_without_the_folder_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(_retailer, "_sample_folder", lambda: tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"run `custval simulate --out DIR`"):
        load_sample()


def test_load_simulated_names_missing_files(tmp_path):
    simulate(n_customers=30).write(tmp_path)
    (tmp_path / "campaign.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing campaign\.csv\.gz; regenerate"):
        load_simulated(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing transactions\.csv\.gz"):
        load_sample(path=tmp_path / "empty")


# --- the CLI --------------------------------------------------------------------------------------


def test_cli_simulate_writes_the_files(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(["simulate", "--out", str(out), "--customers", "150", "--seed", "4"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert "Simulated 150 customers" in capsys.readouterr().out
    expected = simulate(n_customers=150, random_state=4).write(tmp_path / "api")
    for path in expected:
        assert (out / path.name).read_bytes() == path.read_bytes()
    code = main(
        ["simulate", "--out", str(out), "--customers", "40", "--start", "2021-01-01", "--end",
         "2021-12-31"]
    )  # fmt: skip
    assert code == 0
    assert load_simulated(out).truth["period"]["contact_date"] == "2021-09-01"


def test_cli_simulate_reports_bad_input(tmp_path, capsys):
    code = main(["simulate", "--out", str(tmp_path), "--customers", "0"])
    assert code == 2
    assert "n_customers must be a positive integer" in capsys.readouterr().err


# --- public data sets -----------------------------------------------------------------------------


@pytest.mark.slow
def test_load_cdnow_master(cdnow_master_path):
    log = load_cdnow(cdnow_master_path)
    assert list(log.columns) == ["customer_id", "timestamp", "amount", "quantity"]
    assert len(log) == 69_659
    assert log["customer_id"].nunique() == 23_570
    assert round(log["amount"].sum(), 2) == 2_500_315.63
    assert log["quantity"].sum() == 167_881
    assert log["timestamp"].dtype == "datetime64[ns]"
    assert log["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert log["timestamp"].max() == pd.Timestamp("1998-06-30")


def test_load_cdnow_sample(cdnow_sample_path):
    log = load_cdnow(cdnow_sample_path, which="sample")
    assert list(log.columns) == ["customer_id", "timestamp", "amount", "quantity", "master_id"]
    assert len(log) == 6_919
    assert log["customer_id"].nunique() == 2_357
    assert log["customer_id"].min() == 1 and log["customer_id"].max() == 2_357
    assert round(log["amount"].sum(), 2) == 244_091.94
    assert log["quantity"].sum() == 16_479
    assert log.iloc[0]["master_id"] == 4 and log.iloc[0]["amount"] == 29.33


def test_load_cdnow_reads_hardies_headerless_master_and_zip(tmp_path, cdnow_sample_path):
    sample = load_cdnow(cdnow_sample_path, which="sample")
    lines = cdnow_sample_path.read_text().splitlines()[:50]
    headerless = tmp_path / "CDNOW_master.txt"
    headerless.write_text("\n".join(" ".join(line.split()[1:]) for line in lines) + "\n")
    master = load_cdnow(headerless)
    assert len(master) == 50
    assert (master["customer_id"].to_numpy() == sample["customer_id"][:50].to_numpy()).all()
    import zipfile

    with zipfile.ZipFile(tmp_path / "CDNOW_master.zip", "w") as archive:
        archive.write(headerless, "CDNOW_master.txt")
    pd.testing.assert_frame_equal(load_cdnow(tmp_path / "CDNOW_master.zip"), master)


def test_load_cdnow_rejects_the_wrong_layout(tmp_path, cdnow_master_path):
    with pytest.raises(DataError, match="not the CDNOW sample layout"):
        load_cdnow(cdnow_master_path, which="sample")
    with pytest.raises(DataError, match="which must be 'master' or 'sample'"):
        load_cdnow(cdnow_master_path, which="full")
    bad = tmp_path / "bad.txt"
    bad.write_text("00001 1997-01-01 1 11.77\n")
    with pytest.raises(DataError, match="column 'date' has 1 values that are not YYYYMMDD"):
        load_cdnow(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cdnow(tmp_path / "absent.txt")


def test_downloads_fail_with_a_clear_message_offline(tmp_path, monkeypatch):
    """No network in tests: the download is replaced by a failure, as offline."""

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("CUSTVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(OSError, match=r"could not download the CDNOW master file from https://"):
        load_cdnow()
    with pytest.raises(OSError, match=r"pass it: load_online_retail"):
        load_online_retail()
    assert not list((tmp_path / "cache").glob("*.zip"))


def test_download_uses_the_cache(tmp_path, monkeypatch, cdnow_sample_path):
    monkeypatch.setenv("CUSTVAL_CACHE", str(tmp_path))
    import zipfile

    with zipfile.ZipFile(tmp_path / "CDNOW_sample.zip", "w") as archive:
        archive.write(cdnow_sample_path, "CDNOW_sample.txt")

    def no_network(*args, **kwargs):
        raise AssertionError("the cached file should be used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert len(load_cdnow(which="sample")) == 6_919


@pytest.mark.slow
def test_load_online_retail(online_retail_path):
    retail = load_online_retail(online_retail_path)
    assert list(retail.columns) == [
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ]
    assert len(retail) == 541_909
    assert retail["Quantity"].dtype == np.int64
    assert retail["UnitPrice"].dtype == np.float64
    assert retail["CustomerID"].dtype == "Int64"
    assert retail["InvoiceDate"].dtype == "datetime64[ns]"
    assert retail["CustomerID"].isna().sum() == 135_080
    assert retail["CustomerID"].nunique() == 4_372
    assert retail["InvoiceNo"].str.startswith("C").sum() == 9_288
    assert retail["InvoiceNo"].nunique() == 25_900
    assert round((retail["Quantity"] * retail["UnitPrice"]).sum(), 2) == 9_747_747.93
    assert retail["InvoiceDate"].min() == pd.Timestamp("2010-12-01 08:26")


def test_load_online_retail_small_files(tmp_path):
    uci_style = tmp_path / "retail.csv"
    uci_style.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
        "C536379,D,Discount,-1,12/1/2010 9:41,27.5,,United Kingdom\n"
    )
    retail = load_online_retail(uci_style)
    assert retail["InvoiceDate"].tolist() == [
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2010-12-01 09:41"),
    ]
    assert retail["CustomerID"].tolist()[0] == 17850 and retail["CustomerID"].isna().iloc[1]
    missing = tmp_path / "missing.csv"
    missing.write_text("InvoiceNo,Quantity\n1,2\n")
    with pytest.raises(DataError, match=r"missing required column.*'StockCode'"):
        load_online_retail(missing)
    bad = tmp_path / "bad.csv"
    bad.write_text(uci_style.read_text().replace(",6,", ",six,"))
    with pytest.raises(DataError, match="column 'Quantity' has 1 values that are not whole"):
        load_online_retail(bad)


def test_load_donations():
    donations = load_donations(shared_file("donations", "donations.csv"))
    assert list(donations.columns) == ["frequency", "recency", "periods", "weights"]
    assert len(donations) == 22
    assert donations["weights"].sum() == 11_104
    assert (donations["frequency"] * donations["weights"]).sum() == 24_615
    assert (donations["periods"] == 6).all()


def test_load_donations_rejects_impossible_patterns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("frequency,recency,periods,weights\n3,2,6,10\n")
    with pytest.raises(DataError, match="1 patterns are impossible"):
        load_donations(path)
    path.write_text("frequency,recency,weights\n1,2,10\n")
    with pytest.raises(DataError, match=r"missing required column.*'periods'"):
        load_donations(path)


def test_csv_text_is_what_the_docs_say(small):
    text = gzip.decompress(
        _retailer._gzip_bytes(_retailer._csv_bytes(small.customers, "customers"))
    )
    frame = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False)
    assert frame.columns.tolist()[0] == "customer_id"
    assert set(frame["loyalty_member"]) == {"0", "1"}
    assert frame["acquisition_cost"].str.fullmatch(r"\d+\.\d{2}").all()
    assert (frame["loyalty_join_date"].eq("") | frame["loyalty_join_date"].str.len().eq(10)).all()
