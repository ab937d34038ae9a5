r"""CLI commands of the `tools` area (registered on the `shopdesk` command): the marketer analytics.

    shopdesk segments [--as-of 2024-03-31] [--json]
    shopdesk churn score [--as-of DATE] [--top 20] [--segment "At risk"] [--tier high] [--out churn.csv] [--json]
    shopdesk churn evaluate --transactions FILE --columns customer=0,date=1,quantity=2,amount=3 --as-of 1997-12-31 \
        --horizon-days 90 [--skip-bad] [--delimiter ws] [--date-format %Y%m%d] [--json]
    shopdesk profile CUSTOMER [--json]
    shopdesk offers (--segment NAME | --customer ID ...) [--json]
    shopdesk search products "quiet soundbar under $300" [--k 10] [--category TVs] [--json]
    shopdesk search reviews "battery life" [--product "AirPods"] [--min-rating 1] [--max-rating 2] [--json]
    shopdesk search insights [--product ...] [--category ...] [--json]
    shopdesk journeys show CUSTOMER [--json]
    shopdesk journeys funnel [--segment "At risk"] [--tier high] [--category Headphones] [--start 2024-01-01] \
        [--end 2024-03-31] [--json]
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from shopdesk.output import UserError, cli_errors, command_group, emit
from store.cli import (
    check_gzip,
    columns_option,
    date_format_option,
    delimiter_option,
    gzip_option,
    header_option,
    skip_bad_option,
)

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
    transactions: Path = typer.Option(..., "--transactions", help="Transaction export, as `store import transactions` "
                                      "takes it (CSV/TSV/whitespace, optionally gzipped)."),
    columns: str = columns_option(),
    delimiter: str | None = delimiter_option(),
    date_format: str | None = date_format_option(),
    header: bool | None = header_option(),
    skip_bad: bool = skip_bad_option(),
    gzip: str = gzip_option(),
    as_of: str = typer.Option(..., "--as-of", help="Train on the data up to this date, test on the horizon after it."),
    horizon_days: int = typer.Option(90, "--horizon-days", help="Churn = no purchase within this many days."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import a transactions file into a temporary store (the store's importer) and compare our churn model with
    BG/NBD.
    """
    import tempfile

    from store.importers.transactions import parse_columns
    from tools.analytics.evaluate import evaluate_file
    from tools.analytics.snapshot import parse_date
    from tools.errors import ToolError

    try:
        day = parse_date(as_of)
        mapping = parse_columns(columns)
        with tempfile.TemporaryDirectory(prefix="shopdesk-evaluate-") as work:
            result = evaluate_file(transactions, mapping, day, horizon_days, Path(work), delimiter=delimiter,
                                   date_format=date_format, header=header, skip_bad=skip_bad,
                                   gzip_mode=check_gzip(gzip))
    except ToolError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        keys = {"ours", "bgnbd", "customers", "churn_rate", "as_of", "horizon_days", "train_customers",
                "train_churn_rate", "value", "notes"}
        emit(result.model_dump(mode="json", include=keys), True)
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


@cli_errors
def search_products_cmd(
    query: str = typer.Argument(..., help="What to look for; 'under $300', '4+ stars' become filters."),
    k: int = typer.Option(5, "--k", help="How many results."),
    category: str | None = typer.Option(None, help="Catalog category."),
    min_price: float | None = typer.Option(None, help="USD."),
    max_price: float | None = typer.Option(None, help="USD."),
    min_rating: float | None = typer.Option(None, help="Stars, 0-5."),
    in_stock: bool | None = typer.Option(None, "--in-stock/--any-stock", help="Only products in stock."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Hybrid (vector + BM25) product search. JSON: a list of {product_id, title, category, price, score}."""
    from tools import search

    with _marketer_context() as ctx:
        result = search.search_products(ctx, query, min_price=min_price, max_price=max_price, category=category,
                                        min_rating=min_rating, in_stock=in_stock, k=k)
    rows = [
        {"product_id": p.product_id, "title": p.title, "category": p.category, "price": p.price, "score": p.score}
        for p in result.products
    ]
    emit(rows, as_json, lambda _rows: result.render())


@cli_errors
def search_reviews_cmd(
    query: str = typer.Argument(...),
    product: str | None = typer.Option(None, help="Product id or name."),
    min_rating: int | None = typer.Option(None),
    max_rating: int | None = typer.Option(None),
    k: int = typer.Option(5, "--k"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Review search with citations (review id, product, rating, date)."""
    from tools import search

    with _marketer_context() as ctx:
        result = search.search_reviews(ctx, query, product=product, min_rating=min_rating, max_rating=max_rating, k=k)
    emit(result.reviews, as_json, lambda _reviews: result.render())


@cli_errors
def review_insights_cmd(
    product: str | None = typer.Option(None),
    category: str | None = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Rating distribution, sentiment share, top aspects and monthly trend, counted from the index."""
    from tools import search

    with _marketer_context() as ctx:
        result = search.review_insights(ctx, product=product, category=category)
    emit(result, as_json, lambda r: r.render())


@cli_errors
def journey_show(
    customer: str = typer.Argument(..., help="Customer id or email."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A customer's journey: events, orders, support messages and reviews in time order, with stage transitions."""
    from tools.analytics import get_customer_journey

    with _marketer_context() as ctx:
        emit(get_customer_journey(ctx, customer), as_json, lambda r: r.render())


@cli_errors
def journey_funnel_cmd(
    segment: str = typer.Option(None, "--segment", help="Only this segment, e.g. 'At risk'."),
    tier: str = typer.Option(None, "--tier", help="Only this value tier: high, medium or low."),
    category: str = typer.Option(None, "--category", help="Only events about products of this category."),
    start: str = typer.Option(None, "--start", help="First day (YYYY-MM-DD); default: the first event."),
    end: str = typer.Option(None, "--end", help="Last day, included (YYYY-MM-DD); default: the latest event."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The view -> cart -> purchase -> review funnel: customers, conversion, drop-off and its sentiment per stage."""
    from tools.analytics import journey_funnel

    if tier is not None and tier not in ("high", "medium", "low"):
        raise UserError(f"--tier must be high, medium or low, got {tier!r}")
    with _marketer_context() as ctx:
        emit(journey_funnel(ctx, segment=segment, tier=tier, category=category, start=start, end=end), as_json,
             lambda r: r.render())


def register(app: typer.Typer) -> None:
    """Add the analytics, `search products|reviews|insights` and `journeys show|funnel` commands to `app`."""
    app.command("segments")(segments)
    app.command("profile")(profile)
    app.command("offers")(offers)
    churn_app.command("score")(churn_score)
    churn_app.command("evaluate")(churn_evaluate)
    app.add_typer(churn_app, name="churn")
    search_app = command_group(app, "search", "Search products and reviews; measure search quality.")
    search_app.command("products")(search_products_cmd)
    search_app.command("reviews")(search_reviews_cmd)
    search_app.command("insights")(review_insights_cmd)
    journeys_app = command_group(app, "journeys", "Customer journeys and the view -> cart -> purchase -> review "
                                                  "funnel.")
    journeys_app.command("show")(journey_show)
    journeys_app.command("funnel")(journey_funnel_cmd)
