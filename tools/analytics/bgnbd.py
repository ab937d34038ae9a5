"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader, Hardie & Lee 2005b): the field's reference models.

Written here (scipy maximum likelihood) rather than imported: `lifetimes` clashes with new pandas, and the
formulas are short. Time is in whatever unit the caller uses (weeks in the papers; the shop uses weeks too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


def _arrays(x, t_x, T):
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    return x, t_x, T


def bgnbd_loglik(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood (eq. 6 of the paper). x: repeat purchases, t_x: time of last, T: age."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = _arrays(x, t_x, T)
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(
        a + b + x
    )
    log_a1 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore"):
        log_a2 = np.where(
            x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x), -np.inf
        )
    return base + np.logaddexp(log_a1, log_a2)


def _compress(x, t_x, T, w):
    """Customers with the same (x, t_x, T) share one likelihood term: fit on the distinct rows with counts.

    Times are rounded to 1/7 of the unit (a day when the unit is weeks) so that shared histories coincide.
    """
    keys = np.stack([x, np.round(t_x * 7) / 7, np.round(T * 7) / 7], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w)
    return uniq[:, 0], uniq[:, 1], uniq[:, 2], counts


def fit_bgnbd(x, t_x, T, weights=None) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters (optimised on the log scale so they stay positive)."""
    x, t_x, T = _arrays(x, t_x, T)
    if len(x) == 0:
        raise ValueError("no customers to fit BG/NBD on")
    if not np.any(x > 0):
        raise ValueError("BG/NBD needs some repeat purchases; every customer bought only once")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    x, t_x, T, w = _compress(x, t_x, T, w)
    total = w.sum()
    scale = float(np.average(T, weights=w)) if np.any(T > 0) else 1.0

    def nll(theta):
        ll = bgnbd_loglik(BGNBDParams(*np.exp(theta)), x, t_x, T)
        if not np.all(np.isfinite(ll)):
            return 1e300
        return -float(np.dot(w, ll)) / total

    best = None
    for start in ([0.0, np.log(scale), 0.0, 0.0], [np.log(0.5), np.log(scale / 2), np.log(0.5), np.log(2.0)]):
        res = minimize(nll, np.array(start), method="L-BFGS-B", bounds=[(-10, 10)] * 4,
                       options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
        if res.success:  # the second start is only a fallback when the first does not converge
            break
    return BGNBDParams(*np.exp(best.x))


def prob_alive(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """P(the customer has not dropped out by T | history) (eq. 13)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = _arrays(x, t_x, T)
    log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    out = 1.0 / (1.0 + np.exp(np.minimum(log_ratio, 700)))
    return np.where(x > 0, out, 1.0)


def prob_no_purchase(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """P(no purchase in (T, T + horizon] | history): BG/NBD's churn score for a fixed horizon.

    Dead customers buy nothing; a live one keeps its posterior purchase rate Gamma(r + x, alpha + T) and cannot
    drop out without buying (BG/NBD drops out only right after a purchase).
    """
    r, alpha = params.r, params.alpha
    x, t_x, T = _arrays(x, t_x, T)
    pa = prob_alive(params, x, t_x, T)
    silent_if_alive = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon)))
    return np.clip((1.0 - pa) + pa * silent_if_alive, 0.0, 1.0)


def expected_purchases(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """E[number of purchases in (T, T + horizon] | history] (eq. 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = _arrays(x, t_x, T)
    z = horizon / (alpha + T + horizon)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1) if abs(a - 1) > 1e-9 else np.full_like(x, 1e9)
    numer = first * (1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon))) * hyp)
    log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    denom = 1.0 + np.where(x > 0, np.exp(np.minimum(log_ratio, 700)), 0.0)
    out = numer / denom
    # hyp2f1 can lose precision for extreme inputs; fall back to the rate of a live customer times P(alive).
    fallback = prob_alive(params, x, t_x, T) * (r + x) / (alpha + T) * horizon
    out = np.where(np.isfinite(out) & (out >= 0), out, fallback)
    return np.maximum(out, 0.0)


def gamma_gamma_loglik(params: GammaGammaParams, x, mean_value) -> np.ndarray:
    """Per-customer log-likelihood of the Gamma-Gamma spend model (x >= 1 transactions averaging mean_value)."""
    p, q, g = params.p, params.q, params.gamma
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_value, dtype=float)
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + x * m)
    )


def fit_gamma_gamma(x, mean_value) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters on customers with x >= 1 and positive mean value."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_value, dtype=float)
    keep = (x >= 1) & (m > 0) & np.isfinite(m)
    x, m = x[keep], m[keep]
    if len(x) < 2:
        raise ValueError("Gamma-Gamma needs at least two customers with positive spend")

    def nll(theta):
        ll = gamma_gamma_loglik(GammaGammaParams(*np.exp(theta)), x, m)
        if not np.all(np.isfinite(ll)):
            return 1e300
        return -float(ll.mean())

    start = np.array([0.0, np.log(2.0), np.log(max(float(np.mean(m)), 1e-3))])
    res = minimize(nll, start, method="L-BFGS-B", bounds=[(-10, 10), (-10, 10), (-15, 15)],
                   options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 2000})
    return GammaGammaParams(*np.exp(res.x))


def expected_order_value(params: GammaGammaParams, x, mean_value, population_mean: float | None = None) -> np.ndarray:
    """E[value of a future order | x orders averaging mean_value]; customers with x = 0 get the population mean."""
    p, q, g = params.p, params.q, params.gamma
    x = np.asarray(x, dtype=float)
    m = np.nan_to_num(np.asarray(mean_value, dtype=float), nan=0.0)
    if population_mean is None:
        population_mean = p * g / (q - 1) if q > 1 else float(np.mean(m[x > 0])) if np.any(x > 0) else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = p * (g + x * m) / (p * x + q - 1)
    return np.where((x > 0) & np.isfinite(cond) & (cond > 0), cond, population_mean)
