"""Churn model: gradient boosting (LightGBM) on a time split, calibrated, with reasons from its own contributions.

Churn means no purchase in the `horizon_days` after the as-of date. To score as of D, the model is trained on
features as of D - H with labels from (D - H, D], so training never looks past D. Probabilities are calibrated on a
held-out quarter of the training customers by Platt scaling (a sigmoid of the model's margin: it keeps the ranking,
where isotonic regression's steps tied the top customers on one probability). Reasons come from
LightGBM's SHAP contributions (`pred_contrib=True`) turned into plain sentences about the customer's own numbers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from store.db import Store
from tools.analytics.features import FEATURES, build_feature_sets
from tools.results import Lang, tr

MIN_TRAIN_CUSTOMERS = 50
MIN_PER_CLASS = 10
MAX_TRAIN_ROWS = 100_000  # plenty for 22 features; bounds training time on large shops (a random sample)
BAG_BELOW_ROWS = 5_000  # fewer fitting rows than this: train a bag of boosters
BAG_SIZE = 10
# LightGBM's native calls take turns in this process. Its SHAP contributions from several threads at once are not
# safe (LightGBM issue #5482: heap corruption), and during session 34's bench of four conversations at once the
# kernel logged a general protection fault in lib_lightgbm.so and the bench died (its engine process does not load
# LightGBM). Marketer analytics are short, so they simply queue here.
LIGHTGBM = threading.Lock()


class InsufficientData(Exception):
    """Not enough history to train the churn model (the message says why)."""


@dataclass
class ChurnModel:
    boosters: list  # one LightGBM booster, or a bag of them on small training sets (their margins are averaged)
    calibration: str
    train_customers: int
    train_churn_rate: float
    horizon_days: int
    as_of: date
    _platt: tuple[float, float] = (1.0, 0.0)
    features: list[str] = field(default_factory=lambda: list(FEATURES))

    def raw(self, df: pd.DataFrame) -> np.ndarray:
        X = df[self.features].to_numpy(dtype=float)
        with LIGHTGBM:
            return np.mean([b.predict(X, raw_score=True) for b in self.boosters], axis=0)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of churn for each row of a feature table."""
        if len(df) == 0:
            return np.zeros(0)
        a, b = self._platt
        p = 1.0 / (1.0 + np.exp(-(a * self.raw(df) + b)))
        return np.clip(np.nan_to_num(p, nan=self.train_churn_rate), 0.0, 1.0)

    def contributions(self, df: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the churn log-odds (SHAP values), one row per customer."""
        X = df[self.features].to_numpy(dtype=float)
        # SHAP values are additive, so the bag's contributions are the mean of its members'.
        with LIGHTGBM:
            out = np.mean([np.asarray(b.predict(X, pred_contrib=True)) for b in self.boosters], axis=0)
        return out[:, : len(self.features)]


def label_churn(train: pd.DataFrame, later: pd.DataFrame) -> pd.DataFrame:
    """Training rows with `churned` = no purchase between the two feature tables' dates (later minus earlier)."""
    later_freq = later["frequency"].reindex(train.index).fillna(0.0)
    return train.assign(churned=(later_freq <= train["frequency"]).astype(int))


def training_frame(store: Store, as_of: date, horizon_days: int) -> pd.DataFrame:
    """Features as of (as_of - H) with label `churned` = no purchase in (as_of - H, as_of]."""
    train, now = build_feature_sets(store, [as_of - timedelta(days=horizon_days), as_of], horizon_days)
    return label_churn(train, now)


def train_churn_model(
    store: Store, as_of: date, horizon_days: int = 90, seed: int = 0, frame: pd.DataFrame | None = None,
    features: list[str] | None = None,
) -> ChurnModel:
    """Fit and calibrate the model for scoring as of `as_of` (pass `frame` if training_frame was built already) on
    `features` (default FEATURES).
    """
    features = list(features or FEATURES)
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression

    if frame is None:
        frame = training_frame(store, as_of, horizon_days)
    n = len(frame)
    if n < MIN_TRAIN_CUSTOMERS:
        raise InsufficientData(
            f"only {n} customers had bought before {as_of - timedelta(days=horizon_days)} "
            f"(as_of minus the {horizon_days}-day horizon); the churn model needs {MIN_TRAIN_CUSTOMERS}"
        )
    y = frame["churned"].to_numpy()
    churners, stayers = int(y.sum()), int(n - y.sum())
    if min(churners, stayers) < MIN_PER_CLASS:
        raise InsufficientData(
            f"the training window has {churners} churners and {stayers} returning customers; "
            f"at least {MIN_PER_CLASS} of each are needed"
        )
    rng = np.random.default_rng(seed)
    if n > MAX_TRAIN_ROWS:
        frame = frame.iloc[np.sort(rng.choice(n, MAX_TRAIN_ROWS, replace=False))]
        y = frame["churned"].to_numpy()
        n = len(frame)
    # Stratified split: three quarters to fit, one quarter to stop early and calibrate on.
    calib = np.zeros(n, dtype=bool)
    for cls in (0, 1):
        idx = np.flatnonzero(y == cls)
        calib[rng.choice(idx, max(1, len(idx) // 4), replace=False)] = True
    X = frame[features].to_numpy(dtype=float)
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_data_in_leaf": max(10, min(200, n // 200)),
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        # One thread: on the small shared CI machines OpenMP threads spin against each other (13x slower seen).
        "num_threads": 1,
        "force_col_wise": True,
        "verbose": -1,
    }
    fit_idx = np.flatnonzero(~calib)
    # On small training sets one booster's output is a handful of steps (top customers tie at one probability);
    # a bag of boosters on bootstrap resamples averages into a finer, smoother ranking.
    bag = BAG_SIZE if len(fit_idx) < BAG_BELOW_ROWS else 1
    boosters = []
    for member in range(bag):
        idx = fit_idx if bag == 1 else np.sort(rng.choice(fit_idx, len(fit_idx), replace=True))
        # Bag members also see different feature subsets, so customers alike on most features still get told apart.
        member_params = {**params, "seed": seed + member, "feature_fraction": 0.6} if bag > 1 else params
        with LIGHTGBM:
            train = lgb.Dataset(X[idx], y[idx], feature_name=features, free_raw_data=True)
            boosters.append(lgb.train(
                member_params, train, num_boost_round=200,
                valid_sets=[lgb.Dataset(X[calib], y[calib], reference=train)],
                callbacks=[lgb.early_stopping(20, verbose=False)],
            ))
    model = ChurnModel(
        boosters=boosters,
        calibration="platt",
        train_customers=n,
        train_churn_rate=float(y.mean()),
        horizon_days=horizon_days,
        as_of=as_of,
        features=features,
    )
    margin = model.raw(frame.iloc[np.flatnonzero(calib)])
    lr = LogisticRegression(C=1e4).fit(margin.reshape(-1, 1), y[calib])
    model._platt = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))
    return model


# ---- reasons -------------------------------------------------------------------------------------------------


def finite(v, default: float | None = None) -> float | None:
    """v as a float, or `default` where it is missing, not a number, NaN or infinite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if np.isfinite(f) else default


def _days(v: float, lang: Lang = "en") -> str:
    return tr(lang, f"{v:.0f} day" + ("" if round(v) == 1 else "s"), f"{v:.0f} 天")


def _money(v: float, currency: str = "USD") -> str:
    from tools.analytics.models import money

    return money(v, currency)  # one amount format everywhere a person reads (tools/results.py)


def describe_feature(name: str, row: pd.Series, toward_churn: bool, currency: str = "USD",
                     lang: Lang = "en") -> str | None:
    """One plain sentence about the customer's own value of a feature, in `lang`."""

    def g(k: str) -> float | None:
        return finite(row.get(k))

    def t(en: str, zh: str) -> str:
        return tr(lang, en, zh)

    def n(k: str) -> str:
        return f"{g(k) or 0:.0f}"

    def spent(k: str) -> str:
        return _money(g(k) or 0, currency)

    rec, gap = g("recency_days"), g("mean_gap_days")
    if name in ("recency_days", "overdue_ratio"):
        if rec is None:
            return None
        f = g("frequency") or 0
        if f <= 1:
            habit = t("has ordered only once", "只下过 1 单")
        elif gap:
            habit = t(f"usually orders every {_days(gap)}", f"通常每 {_days(gap, lang)}下一单")
        else:
            habit = t(f"all {f:.0f} orders on one day", f"{f:.0f} 个订单都在同一天")
        if toward_churn:
            return t(f"no order for {_days(rec)}; {habit}", f"{_days(rec, lang)}未下单;{habit}")
        return t(f"last order {_days(rec)} ago; {habit}", f"上次下单在 {_days(rec, lang)}前;{habit}")
    if name == "frequency":
        f = g("frequency") or 0
        if f <= 1:
            return t("has ordered only once", "只下过 1 单")
        if toward_churn:
            return t(f"only {f:.0f} orders so far", f"至今只有 {f:.0f} 个订单")
        return t(f"{f:.0f} orders so far", f"至今 {f:.0f} 个订单")
    if name == "mean_gap_days":
        return t(f"usually orders every {gap:.0f} days", f"通常每 {gap:.0f} 天下一单") if gap else \
            t("no repeat order yet", "还没有复购")
    if name == "timing_skew":
        skew = g("timing_skew")
        if skew is None:
            return None
        if skew < -0.1:
            return t("orders have been slowing down (most of them early on)", "下单在放缓(多数订单在早期)")
        if skew > 0.1:
            return t("orders have been speeding up lately", "最近下单在加快")
        return t("orders at a steady pace", "下单节奏平稳")
    if name in ("monetary_total", "avg_order_value"):
        return t(f"spent {spent('monetary_total')} in total, {spent('avg_order_value')} per order",
                 f"累计消费 {spent('monetary_total')},每单 {spent('avg_order_value')}")
    if name == "tenure_days":
        return t(f"customer for {_days(g('tenure_days') or 0)}", f"成为顾客 {_days(g('tenure_days') or 0, lang)}")
    if name in ("orders_90d", "orders_prev_90d"):
        if not (g("orders_90d") or g("orders_prev_90d")):
            return None
        return t(f"{n('orders_90d')} orders in the last 90 days vs {n('orders_prev_90d')} in the 90 before",
                 f"最近 90 天 {n('orders_90d')} 个订单,之前 90 天 {n('orders_prev_90d')} 个")
    if name in ("spend_180d", "spend_prev_180d", "spend_trend"):
        if not (g("spend_180d") or g("spend_prev_180d")):
            return None
        return t(f"spent {spent('spend_180d')} in the last 180 days vs {spent('spend_prev_180d')} before",
                 f"最近 180 天消费 {spent('spend_180d')},之前 180 天 {spent('spend_prev_180d')}")
    if name == "cancel_share":
        return t(f"cancelled {n('cancelled')} of {n('orders_all')} orders",
                 f"{n('orders_all')} 个订单中取消了 {n('cancelled')} 个")
    if name == "return_share":
        return t(f"returned {n('returned')} of {n('orders_all')} orders",
                 f"{n('orders_all')} 个订单中退货 {n('returned')} 个")
    if name in ("review_mean_rating", "review_count"):
        rating = g("review_mean_rating")
        if rating is None:
            return t("has written no reviews", "没有写过评价")
        return t(f"reviews average {rating:.1f}/5 over {n('review_count')}",
                 f"{n('review_count')} 条评价,平均 {rating:.1f}/5")
    if name in ("bgnbd_p_alive", "bgnbd_expected_orders"):
        alive, expected = g("bgnbd_p_alive"), g("bgnbd_expected_orders")
        if alive is None:
            return None
        return t(f"BG/NBD: probability still active {alive:.2f}, {expected or 0:.1f} orders expected in the churn "
                 "horizon", f"BG/NBD:仍活跃的概率 {alive:.2f},流失观察期内预计 {expected or 0:.1f} 个订单")
    if name == "return_value_share":
        if not g("returned_value"):
            return t("returned nothing", "没有退过货")
        return t(f"returned {spent('returned_value')} of {spent('monetary_total')} bought",
                 f"购买 {spent('monetary_total')},退货 {spent('returned_value')}")
    if name == "season_share":
        return t(f"{n('season_orders')} of {n('frequency')} past orders fell in the calendar months ahead",
                 f"过去 {n('frequency')} 个订单中有 {n('season_orders')} 个在接下来的这几个月份")
    if name == "support_contacts":
        count = g("support_contacts") or 0
        return t(f"{count:.0f} support contact" + ("" if count == 1 else "s"), f"{count:.0f} 次客服联系")
    if name in ("views_30d", "views_90d"):
        return t(f"viewed {n('views_30d')} products in the last 30 days, {n('views_90d')} in 90",
                 f"最近 30 天浏览 {n('views_30d')} 个商品,90 天内 {n('views_90d')} 个")
    if name == "carts_90d":
        return t(f"added to cart {n('carts_90d')} times in the last 90 days", f"最近 90 天加购 {n('carts_90d')} 次")
    if name == "browse_recency_days":
        days = g("browse_recency_days")
        if days is None:
            return t("has not browsed the shop", "没有浏览过商店")
        return t(f"last browsed the shop {_days(days)} ago", f"上次浏览商店在 {_days(days, lang)}前")
    if name == "abandoned_cart_days_90d":
        count = g("abandoned_cart_days_90d") or 0
        return t(f"left a cart without buying on {count:.0f} day" + ("" if count == 1 else "s") + " in the last 90",
                 f"最近 90 天中有 {count:.0f} 天加购后未购买")
    if name == "negative_support_messages":
        count = g("negative_support_messages") or 0
        return t(f"{count:.0f} negative support message" + ("" if count == 1 else "s"),
                 f"{count:.0f} 条负面客服消息")
    if name == "open_handoffs":
        count = g("open_handoffs") or 0
        return t(f"{count:.0f} handoff ticket" + ("" if count == 1 else "s") + " still open",
                 f"{count:.0f} 个转人工工单仍未关闭")
    return None


def reasons_from_contributions(
    row: pd.Series, contrib: np.ndarray, features: list[str], k: int = 3, currency: str = "USD", lang: Lang = "en"
) -> list[str]:
    """The k features that pushed this customer's churn score most, as sentences in `lang` (toward churn first)."""
    order = np.argsort(-np.abs(contrib))
    push_up = [i for i in order if contrib[i] > 0]
    chosen = push_up[:k] if push_up else list(order[:k])
    out: list[str] = []
    for i in chosen:
        text = describe_feature(features[i], row, toward_churn=contrib[i] > 0, currency=currency, lang=lang)
        if text and not any(text in o for o in out):
            out.append(text)
    # a sentence another one already says ("usually orders every 75 days" beside "no order for 177 days; usually
    # orders every 75 days") is said once
    out = [o for o in out if not any(o != other and o in other for other in out)]
    if not push_up:
        out.insert(0, tr(lang, "low risk", "风险低"))
    return out


def reasons_from_history(row: pd.Series, p_alive: float | None, lang: Lang = "en") -> list[str]:
    """Reasons for BG/NBD-scored customers: the history the model reads (recency, frequency, age), in `lang`."""
    out = [describe_feature("recency_days", row, toward_churn=True, lang=lang)]
    if p_alive is not None:
        out.append(tr(lang, f"BG/NBD probability still active {p_alive:.2f}", f"BG/NBD 仍活跃的概率 {p_alive:.2f}"))
    return [o for o in out if o]


# ---- evaluation metrics -------------------------------------------------------------------------------------


def top_decile_lift(y: np.ndarray, score: np.ndarray) -> float:
    """Churn rate among the 10% highest scores divided by the overall churn rate (ties broken by order)."""
    n = len(y)
    k = max(1, int(np.ceil(n * 0.1)))
    top = np.argsort(-score, kind="stable")[:k]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else 0.0


def metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, Brier score and top-decile lift of `score` against the labels `y`."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    return {
        "auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "brier": float(brier_score_loss(y, np.clip(score, 0, 1))),
        "top_decile_lift": top_decile_lift(y, score),
    }
