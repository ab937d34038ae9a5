r"""Import transaction exports (one line per purchase or per order line) as customers, orders and returns.

    shopdesk store import transactions CDNOW_master.txt --columns customer=0,date=1,quantity=2,amount=3
    shopdesk store import transactions online_retail.csv --skip-bad --currency GBP \
        --columns order=InvoiceNo,product=StockCode,quantity=Quantity,date=InvoiceDate,price=UnitPrice,customer=CustomerID

Columns are header names or 0-based indexes. The delimiter (comma, semicolon, tab or whitespace), whether the first
line is a header, and the date format are detected from the file unless given, and the result says what was
detected. Ids are namespaced by `source` (default: the file's stem, lower-case) so data from different exports never
collide: customer `cdnow_master:00001`; orders `SOURCE:ORDER` with an order column, else `SOURCE:CUSTOMER:STAMP` (a
customer's lines at one moment are one order), which makes re-imports update in place. Numeric ids lose the ".0"
spreadsheets add. The amount is quantity x price without an amount column. Negative quantities or amounts and lines of
"C" invoices are returns: orders with status "return requested", a negative total and a refund, kept apart from the
purchase they return. Every other order is delivered with a payment of its total. Everything goes in one
transaction: a bad line aborts the import (with file, line and field) unless `skip_bad`, which skips it and counts
the reason. `currency` sets the shop's currency (stored once per shop; a shop with orders cannot switch).
"""  # noqa: E501

from __future__ import annotations

import contextlib
import csv
import itertools
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from shopdesk.output import UserError
from store.db import Store
from store.importers.common import BadInputError, BulkWriter, parse_mapping, previous_runs, record_run, source_name
from store.importers.reading import open_text
from store.models import Customer, Order, OrderItem, Payment, Product
from store.shop import set_shop_currency

FIELDS = ("customer", "date", "amount", "order", "product", "quantity", "price")
REQUIRED = ("customer", "date")


def parse_columns(spec: str) -> dict[str, str]:
    """Parse `customer=0,date=1,amount=3` into {field: column}; unknown fields are a UserError."""
    mapping = parse_mapping(spec, FIELDS)
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        raise UserError(f"--columns: missing {', '.join(missing)} (customer, date and amount or price are required)")
    if "amount" not in mapping and "price" not in mapping:
        raise UserError("--columns: give amount=COLUMN, or price=COLUMN (with quantity) to compute it")
    return mapping


DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", None: "whitespace"}
# Tried in this order; the first that reads every sampled date wins (so month-first beats day-first on a tie,
# which is then reported as ambiguous).
DATE_FORMATS = (
    "%Y%m%d",
    "ISO 8601",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%y",
    "%Y%m%d%H%M%S",
)
DATE_SAMPLE = 3000
SNIFF_LINES = 200
_FLOAT_ID = re.compile(r"(\d+)\.0+")
_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")


def _delimiter(value: str | None) -> str | None:
    if value in ("ws", "whitespace", " "):
        return None
    value = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";"}.get(value, value)
    if value is None or len(value) != 1:
        raise UserError(f"--delimiter must be ws, ',', ';' or '\\t', not {value!r}")
    return value


def detect_delimiter(lines: list[str]) -> str | None:
    """Comma, semicolon or tab by csv.Sniffer when every sampled line splits into the same number (>1) of fields,
    else runs of whitespace (None).
    """
    lines = [ln for ln in lines if ln.strip()]
    candidates = []
    with contextlib.suppress(csv.Error):
        candidates.append(csv.Sniffer().sniff("".join(lines), delimiters=",;\t").delimiter)
    candidates += [d for d in ("\t", ";", ",") if d not in candidates]
    best, best_width = None, 1
    for d in candidates:
        widths = {len(parts) for parts in csv.reader(lines, delimiter=d)}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            if d == candidates[0]:
                return d
            best, best_width = d, width
    if best is not None:
        return best
    widths = {len(ln.split()) for ln in lines}
    if len(widths) == 1 and widths.pop() > 1:
        return None
    return ","


def _parse_date(text: str, fmt: str) -> datetime:
    return datetime.fromisoformat(text) if fmt == "ISO 8601" else datetime.strptime(text, fmt)


def detect_date_format(values: list[str]) -> tuple[str | None, bool]:
    """(the first format of DATE_FORMATS that reads the most values, whether another one reads them as well and
    gives other dates); (None, False) when none reads any.
    """
    best, best_ok, ambiguous = None, 0, False
    for fmt in DATE_FORMATS:
        got = []
        for v in values:
            with contextlib.suppress(ValueError):
                got.append(_parse_date(v, fmt))
        if len(got) > best_ok:
            best, best_ok, best_dates = fmt, len(got), got
        elif best is not None and len(got) == best_ok and got != best_dates:
            ambiguous = True
    return best, ambiguous


def _is_number(text: str) -> bool:
    try:
        Decimal(text.replace("$", "").replace(",", "").strip())
        return True
    except InvalidOperation:
        return False


def clean_id(text: str) -> str:
    """An id as written, without the ".0" that spreadsheet tools append to numeric ids ("16866.0" -> "16866")."""
    text = text.strip()
    m = _FLOAT_ID.fullmatch(text)
    return m.group(1) if m else text


def _rows(f, delim: str | None):
    """(line number, fields) for each non-blank line."""
    if delim is None:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if parts:
                yield n, parts
    else:
        reader = csv.reader(f, delimiter=delim)
        for parts in reader:
            if any(p.strip() for p in parts):
                yield reader.line_num, parts


class _Skip(Exception):
    def __init__(self, reason: str, error: BadInputError):
        self.reason, self.error = reason, error


def _resolve_columns(path: Path, columns: dict[str, str], first: tuple[int, list[str]], header: bool) -> dict[str, int]:
    index: dict[str, int] = {}
    if header:
        names = [h.strip() for h in first[1]]
        for fld, col in columns.items():
            if col in names:
                index[fld] = names.index(col)
            elif col.isdigit() and int(col) < len(names):
                index[fld] = int(col)
            else:
                raise BadInputError(
                    path, f"unknown column {col!r} in the mapping (the header has: {', '.join(names)})", first[0], fld
                )
        return index
    for fld, col in columns.items():
        if not col.isdigit():
            raise BadInputError(
                path, f"column {col!r} is a name but the file has no header; use 0-based indexes", None, fld
            )
        index[fld] = int(col)
        if index[fld] >= len(first[1]):
            raise BadInputError(
                path, f"missing column: index {col} but the line has {len(first[1])} fields", first[0], fld
            )
    return index


def detect_format(
    path: Path,
    columns: dict[str, str],
    delimiter: str | None = None,
    date_format: str | None = None,
    header: bool | None = None,
    gzip_mode: Literal["auto", "yes", "no"] = "auto",
) -> dict[str, Any]:
    """The delimiter, header and date format of a transaction file: the ones given, else detected from the file.

    Returns {"delimiter", "header", "date_format", "detected": [what was detected, in words]}.
    """
    path = Path(path)
    detected: list[str] = []
    with open_text(path, gzip_mode) as f:
        head = list(itertools.islice(f, SNIFF_LINES))
    if not any(ln.strip() for ln in head):
        raise BadInputError(path, "the file is empty")
    if delimiter is None:
        delim = detect_delimiter(head)
        detected.append(f"delimiter {DELIMITER_NAMES.get(delim, repr(delim))}")
    else:
        delim = _delimiter(delimiter)
    first = next(_rows(iter(head), delim), None)
    if header is None:
        header = not any(_is_number(x) for x in first[1] if x.strip())
        detected.append("a header line" if header else "no header line")
    if date_format is None:
        index = _resolve_columns(path, columns, first, header)
        values = _date_sample(path, gzip_mode, delim, index["date"], skip_first=header)
        if not values:
            raise BadInputError(path, "the file has a header but no rows")
        fmt, ambiguous = detect_date_format(values)
        if fmt is None:
            raise BadInputError(path, f"cannot tell the date format (e.g. {values[0]!r}); set --date-format", None,
                                "date")
        date_format = fmt
        detected.append(f"date format {fmt}" + (" (ambiguous: day and month could be swapped; set --date-format)"
                                                 if ambiguous else ""))
    return {"delimiter": delim, "header": header, "date_format": date_format, "detected": detected}


def _date_sample(path: Path, gzip_mode, delim: str | None, col: int, skip_first: bool) -> list[str]:
    """Distinct date texts spread over the whole file (the first lines alone may all fall on day <= 12)."""
    seen: dict[str, None] = {}
    with open_text(path, gzip_mode) as f:
        rows = _rows(f, delim)
        if skip_first:
            next(rows, None)
        for _, parts in rows:
            if col < len(parts):
                seen.setdefault(parts[col].strip(), None)
    values = [v for v in seen if v]
    if len(values) > DATE_SAMPLE:
        step = len(values) / DATE_SAMPLE
        values = [values[int(i * step)] for i in range(DATE_SAMPLE)]
    return values


def import_transactions(
    store: Store,
    path: Path,
    columns: dict[str, str],
    delimiter: str | None = None,
    date_format: str | None = None,
    gzip_mode: Literal["auto", "yes", "no"] = "auto",
    skip_bad: bool = False,
    header: bool | None = None,
    source: str | None = None,
    progress: bool = False,
    currency: str | None = None,
) -> dict[str, Any]:
    """Import a transaction file in one transaction; returns counts, what was detected, and with skip_bad the
    skipped rows per reason. Delimiter, header and date format are detected where not given.
    """
    from tqdm import tqdm

    path = Path(path)
    fmt = detect_format(path, columns, delimiter, date_format, header, gzip_mode)
    delim, header, date_format = fmt["delimiter"], fmt["header"], fmt["date_format"]
    decimal_comma = delim == ";"
    source = source or source_name(path, "transactions")
    skipped: Counter[str] = Counter()
    customers: dict[str, datetime] = {}
    orders: dict[str, dict[str, Any]] = {}
    items: list[dict[str, Any]] = []
    products: set[str] = set()
    date_cache: dict[str, datetime] = {}
    rows_seen = returns = 0

    with open_text(path, gzip_mode) as f:
        rows = _rows(f, delim)
        first = next(rows, None)
        if first is None:
            raise BadInputError(path, "the file is empty")
        index = _resolve_columns(path, columns, first, header)
        body = rows if header else itertools.chain([first], rows)
        width = max(index.values()) + 1

        def number(text: str, line: int, fld: str) -> Decimal:
            text = text.replace("$", "").strip()
            if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
                text = text.replace(",", ".")
            try:
                value = Decimal(text.replace(",", ""))
            except InvalidOperation:
                raise _Skip("bad number", BadInputError(path, f"bad number {text!r}", line, fld)) from None
            if not value.is_finite():
                raise _Skip("bad number", BadInputError(path, f"bad number {text!r}", line, fld))
            return value

        def when(text: str, line: int) -> datetime:
            got = date_cache.get(text)
            if got is None:
                try:
                    got = _parse_date(text, date_format)
                except ValueError:
                    raise _Skip(
                        "bad date",
                        BadInputError(
                            path, f"bad date {text!r} (expected {date_format}; set --date-format)", line, "date"
                        ),
                    ) from None
                date_cache[text] = got
            return got

        bar = tqdm(desc=f"import {path.name}", unit="rows", disable=not progress, mininterval=0.5)
        for line, parts in body:
            rows_seen += 1
            bar.update(1)
            try:
                if len(parts) < width:
                    missing = [fld for fld, i in index.items() if i >= len(parts)]
                    raise _Skip(
                        "missing column",
                        BadInputError(path, f"missing column: the line has {len(parts)} fields", line, missing[0]),
                    )
                cust = clean_id(parts[index["customer"]])
                if not cust:
                    raise _Skip("missing customer", BadInputError(path, "no customer id", line, "customer"))
                t = when(parts[index["date"]].strip(), line)
                order_no = clean_id(parts[index["order"]]) if "order" in index else ""
                qty = number(parts[index["quantity"]], line, "quantity") if "quantity" in index else Decimal(1)
                if qty == 0:
                    raise _Skip("zero quantity", BadInputError(path, "bad number: quantity is 0", line, "quantity"))
                if qty != qty.to_integral_value():
                    raise _Skip(
                        "bad number", BadInputError(path, f"bad number: quantity {qty} is not whole", line, "quantity")
                    )
                if "amount" in index:
                    amount = number(parts[index["amount"]], line, "amount")
                    unit = abs(amount / qty).quantize(Decimal("0.01"))
                else:
                    unit = number(parts[index["price"]], line, "price")
                    amount = unit * qty
                # A return: a negative quantity or amount, or a line of a cancellation invoice ("C536379").
                is_return = qty < 0 or amount < 0 or order_no[:1] in ("C", "c")
                if unit < 0:
                    raise _Skip(
                        "negative amount",
                        BadInputError(
                            path, f"bad number: negative price {unit}", line, "amount" if "amount" in index else "price"
                        ),
                    )
                if is_return:
                    qty, amount = -abs(qty), -abs(amount)
            except _Skip as skip:
                if not skip_bad:
                    bar.close()
                    raise skip.error from None
                skipped[skip.reason] += 1
                continue
            cid = f"{source}:{cust}"[:64]
            customers[cid] = min(t, customers.get(cid, t))
            if order_no:
                oid = f"{source}:{order_no}"
                if is_return and order_no[:1] not in ("C", "c"):
                    oid += ":R"  # returned lines of an ordinary order form their own return
            else:
                # Without an order column, a customer's lines at one moment are one order (one purchase occasion,
                # as the BG/NBD papers count them); returns at that moment are a separate one.
                oid = f"{source}:{cust}:{t:%Y%m%d%H%M}" + (":R" if is_return else "")
            oid = oid[:64]
            order = orders.get(oid)
            if order is None:
                returns += is_return
                order = orders[oid] = {
                    "id": oid,
                    "customer_id": cid,
                    "status": "return requested" if is_return else "delivered",
                    "created_at": t,
                    "updated_at": t,
                    "total": Decimal(0),
                    "address": None,
                    "details": {"return": True} if is_return else {},
                    "source": source,
                }
            elif order["customer_id"] != cid:
                err = BadInputError(path, f"order {oid} already belongs to another customer", line, "customer")
                if not skip_bad:
                    bar.close()
                    raise err
                skipped["order of another customer"] += 1
                continue
            order["total"] += amount
            pid = None
            if "product" in index and parts[index["product"]].strip():
                pid = f"{source}:{clean_id(parts[index['product']])}"[:64]
                products.add(pid)
            items.append(
                {
                    "order_id": oid,
                    "product_id": pid,
                    "variant_id": None,
                    "name": pid.split(":", 1)[1] if pid else None,
                    "quantity": int(qty),
                    "unit_price": unit,
                    "options": None,
                }
            )
        bar.close()
    if rows_seen == 0:
        raise BadInputError(path, "the file has a header but no rows")
    if not orders:
        raise BadInputError(path, f"no usable rows: all {rows_seen} were skipped ({dict(skipped)})")

    customer_rows = [
        {
            "id": cid,
            "first_name": None,
            "last_name": None,
            "email": None,
            "address1": None,
            "address2": None,
            "city": None,
            "state": None,
            "country": None,
            "zip": None,
            "signup_date": t,
            "source": source,
        }
        for cid, t in customers.items()
    ]
    for o in orders.values():
        o["total"] = o["total"].quantize(Decimal("0.01"))
    payments = [
        {
            "order_id": o["id"],
            "kind": "refund" if o["total"] < 0 else "payment",
            "amount": abs(o["total"]),
            "payment_method_id": None,
            "created_at": o["created_at"],
        }
        for o in orders.values()
    ]
    product_rows = [
        {
            "id": p,
            "name": p.split(":", 1)[1],
            "category": None,
            "brand": None,
            "description": None,
            "rating": None,
            "rating_count": None,
            "source": source,
            "updated_at": None,
        }
        for p in sorted(products)
    ]
    counts = {
        "customers": len(customer_rows),
        "orders": len(orders),
        "returns": returns,
        "order_items": len(items),
        "products": len(product_rows),
        "rows": rows_seen - sum(skipped.values()),
    }
    with store.transaction() as session:
        before = previous_runs(session, "transactions", path)
        if currency is not None:
            has_orders = session.scalar(select(Order.id).limit(1)) is not None
            currency = set_shop_currency(session, currency, has_orders and not before)
        w = BulkWriter(session)
        order_ids = list(orders)
        w.delete_where_in(OrderItem, "order_id", order_ids)
        w.delete_where_in(Payment, "order_id", order_ids)
        w.upsert(Customer, customer_rows)
        w.upsert(Product, product_rows)
        w.upsert(Order, list(orders.values()))
        w.insert(OrderItem, items)
        w.insert(Payment, payments)
        record_run(session, "transactions", path, {**counts, "skipped": dict(skipped)})
    result: dict[str, Any] = {
        "file": str(path),
        "source": source,
        "counts": counts,
        "skipped": dict(skipped),
        "detected": fmt["detected"],
        "format": {"delimiter": DELIMITER_NAMES.get(delim, delim), "header": header, "date_format": date_format},
    }
    if currency is not None:
        result["currency"] = currency
    if before:
        result["note"] = f"this file was imported {before} time(s) before; rows were updated, not duplicated"
    return result
