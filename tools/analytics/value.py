"""Expected customer value over the next 12 months and the high / medium / low tiers built on it.

Value = BG/NBD expected purchases in 52 weeks x Gamma-Gamma expected order value. Why these rather than a
regression model: they need only the order history up to the as-of date (a regression would need a full 12-month
labelled window before it, which young shops do not have), they give one-order customers sensible values from the
population, and they are the field's standard, checked here against the published CDNOW estimates.
Tiers: the top 20% of customers by predicted value are "high", the next 30% "medium", the rest "low".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tools.analytics import bgnbd

WEEKS_12M = 365.0 / 7.0
HIGH_SHARE = 0.20
MEDIUM_SHARE = 0.30
MAX_FIT_ROWS = 20_000  # BG/NBD has four parameters: a sample this size pins them down; scoring uses everyone


@dataclass
class ValueModel:
    bgnbd: bgnbd.BGNBDParams | None
    gamma_gamma: bgnbd.GammaGammaParams | None
    notes: list[str]


def fit_value_model(features: pd.DataFrame, seed: int = 0) -> ValueModel:
    """Fit BG/NBD and Gamma-Gamma on the features (sampled if large), noting what could not be fitted."""
    notes: list[str] = []
    fit = features
    if len(fit) > MAX_FIT_ROWS:
        fit = fit.sample(MAX_FIT_ROWS, random_state=seed)
    bg = gg = None
    try:
        bg = features.attrs.get("bgnbd_params") or bgnbd.fit_bgnbd(fit["x"], fit["t_x"], fit["T"])
    except ValueError as exc:
        notes.append(f"BG/NBD not fitted: {exc}; value tiers use past spend instead")
    repeaters = fit[(fit["x"] > 0) & (fit["avg_order_value"] > 0)]
    if bg is not None:
        try:
            gg = bgnbd.fit_gamma_gamma(repeaters["frequency"], repeaters["avg_order_value"])
            if gg.q <= 1:
                notes.append("Gamma-Gamma fit has q <= 1 (no finite population mean); using observed means")
        except ValueError as exc:
            notes.append(f"Gamma-Gamma not fitted: {exc}; using each customer's mean order value")
    return ValueModel(bg, gg, notes)


def predict_value(model: ValueModel, features: pd.DataFrame) -> pd.DataFrame:
    """Columns value_12m_usd, expected_orders_12m, p_alive and tier for each customer."""
    out = pd.DataFrame(index=features.index)
    if len(features) == 0:
        return out.assign(value_12m_usd=[], expected_orders_12m=[], p_alive=[], tier=[])
    aov = features["avg_order_value"].fillna(0.0).to_numpy()
    if model.bgnbd is not None:
        x, t_x, T = features["x"], features["t_x"], features["T"]
        orders = bgnbd.expected_purchases(model.bgnbd, x, t_x, T, WEEKS_12M)
        alive = bgnbd.prob_alive(model.bgnbd, x, t_x, T)
        if model.gamma_gamma is not None and model.gamma_gamma.q > 1:
            spend = bgnbd.expected_order_value(
                model.gamma_gamma, np.where(features["x"] > 0, features["frequency"], 0), aov
            )
        else:
            spend = aov
        out["expected_orders_12m"] = np.nan_to_num(orders, nan=0.0)
        out["p_alive"] = np.nan_to_num(alive, nan=0.0)
        out["value_12m_usd"] = np.nan_to_num(orders * spend, nan=0.0, posinf=0.0)
        ranking = out["value_12m_usd"]
    else:
        out["expected_orders_12m"] = np.nan
        out["p_alive"] = np.nan
        out["value_12m_usd"] = 0.0
        ranking = features["monetary_total"].fillna(0.0)
    out["tier"] = assign_tiers(ranking)
    return out


def assign_tiers(value: pd.Series) -> pd.Series:
    """Top 20% by value 'high', next 30% 'medium', rest 'low' (ties broken by customer order, deterministic)."""
    n = len(value)
    rank = value.rank(method="first", ascending=False).to_numpy()  # 1 = most valuable
    high, medium = np.ceil(n * HIGH_SHARE), np.ceil(n * (HIGH_SHARE + MEDIUM_SHARE))
    tiers = np.where(rank <= high, "high", np.where(rank <= medium, "medium", "low"))
    return pd.Series(tiers, index=value.index)
