r"""Churn evaluation on a transactions file: our model against BG/NBD on the same customers and horizon.

    shopdesk churn evaluate --transactions CDNOW_master.txt --columns customer=0,date=1,quantity=2,amount=3 \
        --as-of 1997-12-31 --horizon-days 90 --json
    shopdesk churn evaluate --transactions online_retail.csv --skip-bad --as-of 2011-09-09 \
        --columns order=InvoiceNo,product=StockCode,quantity=Quantity,date=InvoiceDate,price=UnitPrice,customer=CustomerID

The file goes into a temporary store through the store's own transaction importer (same column mapping, detection
and options as `shopdesk store import transactions`), so the evaluation runs the very SQL features and training the
shop uses. Ours is trained on features as of (as_of - H) with labels from (as_of - H, as_of]; both models then score
every customer with a purchase up to as_of, and are judged on who buys in (as_of, as_of + H].
"""  # noqa: E501

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from shopdesk.output import UserError
from store.db import Store
from tools.analytics import bgnbd
from tools.analytics.churn import InsufficientData, label_churn, metrics, train_churn_model
from tools.analytics.features import (
    JOURNEY_FEATURES,
    WORDS_FEATURES,
    build_feature_sets,
    cutoff_of,
    data_span,
    purchased_between,
    spent_between,
)
from tools.analytics.models import ChurnEvaluation, Metrics, ValueEvaluation, ValueMetrics
from tools.analytics.snapshot import check_horizon

VALUE_DAYS = 365


def evaluate_churn(store: Store, as_of: date, horizon_days: int = 90,
                   features: list[str] | None = None) -> ChurnEvaluation:
    """Train the churn model as of `as_of` on `features` (default the model's) and score it on who bought in the
    following horizon.
    """
    check_horizon(horizon_days)
    span = data_span(store)
    if span.first is None:
        raise UserError("there are no orders to evaluate on")
    first, last = span.first.date(), span.last.date()
    if as_of - timedelta(days=horizon_days) < first:
        raise UserError(
            f"as_of {as_of} leaves no training window: the data starts {first}, and training needs "
            f"{horizon_days} days of history before as_of (pick {first + timedelta(days=horizon_days + 1)} or later)"
        )
    end = as_of + timedelta(days=horizon_days)
    if end > last:
        raise UserError(
            f"the data ends {last}, but as_of {as_of} + {horizon_days} days = {end}: the horizon is longer than the "
            f"data (pick as_of {last - timedelta(days=horizon_days)} or earlier, or a shorter horizon)"
        )
    # their queries run only when they are asked for
    journey = bool(set(features or ()) & set(JOURNEY_FEATURES + WORDS_FEATURES))
    train, test = build_feature_sets(store, [as_of - timedelta(days=horizon_days), as_of], horizon_days, journey)
    try:
        model = train_churn_model(store, as_of, horizon_days, frame=label_churn(train, test), features=features)
    except InsufficientData as exc:
        raise UserError(f"cannot train the churn model: {exc}") from None
    buyers = purchased_between(store, cutoff_of(as_of), cutoff_of(end))
    y = (~test.index.isin(list(buyers))).astype(int)
    if y.min() == y.max():
        raise UserError(f"every test customer {'churned' if y[0] else 'bought again'}: AUC is undefined")
    ours = model.predict(test)
    params = bgnbd.fit_bgnbd(test["x"], test["t_x"], test["T"])
    base = bgnbd.prob_no_purchase(params, test["x"], test["t_x"], test["T"], horizon_days / 7.0)
    notes = [f"calibration: {model.calibration}; BG/NBD time unit: weeks"]
    value = evaluate_value(store, test, params, ours, base, as_of, last)
    if value is not None and value.days < VALUE_DAYS:
        notes.append(f"value judged over the {value.days} days of data after as_of, not 12 months")
    return ChurnEvaluation(
        as_of=as_of,
        horizon_days=horizon_days,
        ours=Metrics(**metrics(y, ours)),
        bgnbd=Metrics(**metrics(y, base)),
        customers=len(y),
        churn_rate=float(y.mean()),
        train_customers=model.train_customers,
        train_churn_rate=model.train_churn_rate,
        bgnbd_params={"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
        value=value,
        notes=notes,
    )


def evaluate_value(
    store: Store, test, params: bgnbd.BGNBDParams, churn_ours, churn_bgnbd, as_of: date, last: date
) -> ValueEvaluation | None:
    """Customer value over the next 12 months (or the data left, if less) against the spend that followed.

    BG/NBD with Gamma-Gamma: expected purchases x expected order value. Ours: the same, with BG/NBD's chance of a
    purchase within the churn horizon replaced by our churn model's (the expected purchases scaled by
    (1 - p_ours) / (1 - p_bgnbd), then rescaled to BG/NBD's total), so the value ranking follows the better churn
    ranking.
    """
    from scipy.stats import spearmanr

    days = min(VALUE_DAYS, (last - as_of).days)
    if days < 1:
        return None
    x, t_x, T = test["x"], test["t_x"], test["T"]
    repeaters = test[(test["x"] > 0) & (test["avg_order_value"] > 0)]
    try:
        gg = bgnbd.fit_gamma_gamma(repeaters["frequency"], repeaters["avg_order_value"])
    except ValueError:
        return None
    aov = test["avg_order_value"].fillna(0.0).to_numpy()
    spend = bgnbd.expected_order_value(gg, np.where(x > 0, test["frequency"], 0), aov) if gg.q > 1 else aov
    base = np.nan_to_num(bgnbd.expected_purchases(params, x, t_x, T, days / 7.0) * spend, nan=0.0, posinf=0.0)
    ratio = np.clip((1.0 - np.asarray(churn_ours)) / np.clip(1.0 - np.asarray(churn_bgnbd), 1e-3, None), 0.0, 10.0)
    # Our churn model re-distributes BG/NBD's total: calibrated on the window before as_of, its level can drift
    # with the season, while BG/NBD's expected total is fitted on the whole history.
    ours = base * ratio * (base.sum() / max(float((base * ratio).sum()), 1e-9))
    realised = spent_between(store, cutoff_of(as_of), cutoff_of(as_of + timedelta(days=days)))
    actual = realised.reindex(test.index).fillna(0.0).to_numpy()

    def score(pred) -> ValueMetrics:
        return ValueMetrics(mae=float(np.mean(np.abs(pred - actual))), rank_corr=float(spearmanr(pred, actual)[0]))

    return ValueEvaluation(days=days, realised_mean=float(actual.mean()), ours=score(ours), bgnbd_gg=score(base))


def evaluate_file(
    path: Path,
    columns: dict[str, str],
    as_of: date,
    horizon_days: int,
    workdir: Path,
    **import_options: Any,
) -> ChurnEvaluation:
    """Import a transactions file into a temporary SQLite store under `workdir` and evaluate on it.

    `columns` and `import_options` (delimiter, date_format, header, skip_bad, gzip_mode) are those of
    store.importers.transactions.import_transactions; what it detected and skipped goes into the notes.
    """
    from store.db import open_store
    from store.importers.transactions import import_transactions

    store = open_store(f"sqlite:///{Path(workdir) / 'evaluate.db'}")
    try:
        imported = import_transactions(store, Path(path), columns, **import_options)
        result = evaluate_churn(store, as_of, horizon_days)
    finally:
        store.dispose()
    notes = []
    if imported["detected"]:
        notes.append("detected: " + ", ".join(imported["detected"]))
    if imported["skipped"]:
        notes.append("skipped rows: " + ", ".join(f"{k} {v}" for k, v in imported["skipped"].items()))
    if imported["counts"].get("returns"):
        notes.append(f"returns recorded: {imported['counts']['returns']}")
    result.notes = notes + result.notes
    return result
