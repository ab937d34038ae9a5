"""BG/NBD and Gamma-Gamma against the published CDNOW estimates and against simulation."""

import numpy as np
import pandas as pd
import pytest

from shopdesk.datasets import cdnow_transactions
from tools.analytics import bgnbd


@pytest.fixture(scope="module")
def cdnow_sample():
    """The 2,357-customer CDNOW sample (1/10th of the Q1-1997 cohort), 39-week calibration to 1997-09-30."""
    path = cdnow_transactions().parent / "CDNOW_sample.txt"
    assert path.exists(), f"{path} is missing: `make setup` installs the lifetimes wheel that ships it"
    df = pd.read_csv(path, sep=r"\s+", header=None, names=["master", "cust", "date", "cds", "amount"],
                     dtype={"date": str})
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    end = pd.Timestamp("1997-09-30")
    days = df[df["date"] <= end].groupby(["cust", "date"], as_index=False)["amount"].sum()  # same-day purchases merge
    g = days.sort_values("date").groupby("cust")
    first, last, n = g["date"].min(), g["date"].max(), g.size()
    repeat_mean = g["amount"].apply(lambda a: a.iloc[1:].mean() if len(a) > 1 else np.nan)
    return pd.DataFrame(
        {"x": n - 1, "t_x": (last - first).dt.days / 7, "T": (end - first).dt.days / 7, "zbar": repeat_mean}
    )


def test_bgnbd_reproduces_published_cdnow_estimates(cdnow_sample):
    assert len(cdnow_sample) == 2357 and cdnow_sample["x"].sum() == 2457
    p = bgnbd.fit_bgnbd(cdnow_sample["x"], cdnow_sample["t_x"], cdnow_sample["T"])
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", table of estimates.
    assert p.r == pytest.approx(0.243, abs=0.001)
    assert p.alpha == pytest.approx(4.414, abs=0.002)
    assert p.a == pytest.approx(0.793, abs=0.001)
    assert p.b == pytest.approx(2.426, abs=0.002)
    ll = bgnbd.bgnbd_loglik(p, cdnow_sample["x"], cdnow_sample["t_x"], cdnow_sample["T"]).sum()
    assert ll == pytest.approx(-9582.4, abs=0.5)  # the paper's maximised log-likelihood


def test_gamma_gamma_reproduces_published_cdnow_estimates(cdnow_sample):
    rep = cdnow_sample[cdnow_sample["x"] > 0]
    assert len(rep) == 946
    p = bgnbd.fit_gamma_gamma(rep["x"], rep["zbar"])
    # Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves": p = 6.25, q = 3.74, gamma = 15.44.
    assert p.p == pytest.approx(6.25, abs=0.01)
    assert p.q == pytest.approx(3.74, abs=0.01)
    assert p.gamma == pytest.approx(15.44, abs=0.02)


def _simulate(params, n, T_obs, horizon, rng):
    """Draw customers from BG/NBD; return (x, t_x, T) at T_obs and purchases in (T_obs, T_obs + horizon]."""
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    for i in range(n):
        t, alive = 0.0, True
        while alive:
            t += rng.exponential(1 / lam[i])
            if t > T_obs + horizon:
                break
            if t <= T_obs:
                x[i] += 1
                t_x[i] = t
            else:
                future[i] += 1
            alive = rng.random() >= p[i]
    return x, t_x, np.full(n, T_obs), future


def test_bgnbd_recovers_parameters_and_predicts_simulated_futures():
    truth = bgnbd.BGNBDParams(r=0.5, alpha=5.0, a=0.8, b=2.5)
    rng = np.random.default_rng(7)
    x, t_x, T, future = _simulate(truth, 8000, 40.0, 13.0, rng)
    p = bgnbd.fit_bgnbd(x, t_x, T)
    assert p.r == pytest.approx(truth.r, rel=0.15)
    assert p.alpha == pytest.approx(truth.alpha, rel=0.25)
    # Conditional predictions under the true parameters agree with what the simulation did next.
    assert bgnbd.expected_purchases(truth, x, t_x, T, 13.0).mean() == pytest.approx(future.mean(), rel=0.08)
    assert bgnbd.prob_no_purchase(truth, x, t_x, T, 13.0).mean() == pytest.approx((future == 0).mean(), abs=0.02)
    alive = bgnbd.prob_alive(truth, x, t_x, T)
    assert np.all((alive > 0) & (alive <= 1))
    assert np.all(alive[x == 0] == 1.0)  # BG/NBD: nobody drops out before a first repeat purchase


def test_degenerate_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="repeat purchases"):
        bgnbd.fit_bgnbd([0, 0, 0], [0, 0, 0], [5, 6, 7])
    with pytest.raises(ValueError, match="no customers"):
        bgnbd.fit_bgnbd([], [], [])
