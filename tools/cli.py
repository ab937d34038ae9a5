"""CLI commands of the `tools` area (registered on the `shopdesk` command): the marketer analytics.

    shopdesk segments [--as-of 2024-03-31] [--json]
    shopdesk churn score [--as-of DATE] [--top 20] [--segment "At risk"] [--tier high] [--out churn.csv] [--json]
    shopdesk churn evaluate --transactions FILE --columns customer_id,date,quantity,amount --as-of 1997-12-31 \\
        --horizon-days 90 --json
    shopdesk profile CUSTOMER [--json]
    shopdesk offers (--segment NAME | --customer ID ...) [--json]
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from shopdesk.output import UserError, cli_errors, emit

churn_app = typer.Typer(help="Churn scores and their evaluation against BG/NBD.", no_args_is_help=True)


@contextmanager
def _marketer_context():
    """A marketer session on the configured store; tool errors become one-line CLI errors."""
    from shopdesk.settings import get_settings
    from store.db import open_store
    from tools.context import ShopContext
    from tools.errors import ToolError

    settings = get_settings()
    store = open_store(settings.db_url)
    try:
        yield ShopContext(store=store, settings=settings, role="marketer")
    except ToolError as exc:
        raise UserError(str(exc)) from None
    finally:
        store.dispose()


@cli_errors
def segments(
    as_of: str = typer.Option(None, "--as-of", help="Date the figures describe (YYYY-MM-DD); default: latest order."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """RFM segments: size, revenue share, predicted 12-month value and churn risk of each."""
    from tools.analytics import summarize_segments

    with _marketer_context() as ctx:
        emit(summarize_segments(ctx, as_of=as_of), as_json, lambda r: r.render())


@cli_errors
def churn_score(
    as_of: str = typer.Option(None, "--as-of", help="Date to score as of (YYYY-MM-DD); default: latest order."),
    top: int = typer.Option(20, "--top", help="How many customers to list; 0 lists everyone."),
    horizon_days: int = typer.Option(90, "--horizon-days", help="Churn = no purchase within this many days."),
    segment: str = typer.Option(None, "--segment", help="Only this segment, e.g. 'At risk'."),
    tier: str = typer.Option(None, "--tier", help="Only this value tier: high, medium or low."),
    min_value: float = typer.Option(None, "--min-value", help="Only customers worth at least this (USD, 12 months)."),
    out: Path = typer.Option(None, "--out", help="Also write the rows to this CSV file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Customers ranked by churn probability, with 12-month value, segment, tier and reasons."""
    from tools.analytics.rfm import SEGMENTS, normalise_segment
    from tools.analytics.scores import churn_table
    from tools.analytics.snapshot import get_snapshot

    if top < 0:
        raise UserError(f"--top must be 0 (everyone) or more, got {top}")
    if tier is not None and tier not in ("high", "medium", "low"):
        raise UserError(f"--tier must be high, medium or low, got {tier!r}")
    seg = None
    if segment:
        seg = normalise_segment(segment)
        if seg is None:
            raise UserError(f"unknown segment {segment!r}; segments are: {', '.join(SEGMENTS)}")
    with _marketer_context() as ctx:
        snap = get_snapshot(ctx, as_of, horizon_days)
        result = churn_table(snap, top or max(1, len(snap.table)), seg, tier, min_value)
    if out is not None:
        _write_csv(out, [r.model_dump() for r in result.rows])
    emit(result, as_json, lambda r: r.render())


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fields = list(rows[0].keys()) if rows else ["rank", "customer_id", "churn_probability"]
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


@cli_errors
def churn_evaluate(
    transactions: Path = typer.Option(..., "--transactions", help="Transactions file (CSV or whitespace separated)."),
    columns: str = typer.Option(
        None, "--columns", help="The file's columns in order, naming customer_id, date and amount "
        "(e.g. customer_id,date,quantity,amount); default: the header line."
    ),
    as_of: str = typer.Option(..., "--as-of", help="Train on the data up to this date, test on the horizon after it."),
    horizon_days: int = typer.Option(90, "--horizon-days", help="Churn = no purchase within this many days."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import a transactions file into a temporary store and compare our churn model with BG/NBD."""
    import tempfile

    from tools.analytics.evaluate import evaluate_file
    from tools.analytics.snapshot import parse_date
    from tools.errors import ToolError

    try:
        day = parse_date(as_of)
        cols = [c.strip() for c in columns.split(",")] if columns else None
        with tempfile.TemporaryDirectory(prefix="shopdesk-evaluate-") as work:
            result = evaluate_file(transactions, cols, day, horizon_days, Path(work))
    except ToolError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        emit(result.model_dump(mode="json", include={"ours", "bgnbd", "customers", "churn_rate", "as_of",
                                                    "horizon_days", "train_customers", "train_churn_rate"}), True)
    else:
        emit(result, False, lambda r: r.render())


@cli_errors
def profile(
    customer: str = typer.Argument(..., help="Customer id or email."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A customer's profile: orders, spend, favourite categories, segment, value tier and churn risk."""
    from tools.analytics import get_customer_profile

    with _marketer_context() as ctx:
        emit(get_customer_profile(ctx, customer), as_json, lambda r: r.render())


@cli_errors
def offers(
    segment: str = typer.Option(None, "--segment", help="Segment to target, e.g. 'At risk'."),
    customer: list[str] = typer.Option(None, "--customer", help="Customer id or email (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Draft retention offers (coupon or points sized by customer value). Nothing is sent."""
    from tools.analytics import draft_retention_offer

    with _marketer_context() as ctx:
        emit(draft_retention_offer(ctx, segment=segment, customers=customer or None), as_json,
             lambda r: r.render())


def register(app: typer.Typer) -> None:
    app.command("segments")(segments)
    app.command("profile")(profile)
    app.command("offers")(offers)
    churn_app.command("score")(churn_score)
    churn_app.command("evaluate")(churn_evaluate)
    app.add_typer(churn_app, name="churn")
