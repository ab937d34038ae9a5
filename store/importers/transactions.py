"""Import transaction exports (one line per purchase or per order line) as customers and delivered orders.

    shopdesk store import transactions CDNOW_master.txt --columns customer=0,date=1,quantity=2,amount=3 \\
        --delimiter ws --date-format %Y%m%d --no-header
    shopdesk store import transactions online_retail.csv --skip-bad \\
        --columns order=InvoiceNo,product=StockCode,quantity=Quantity,date=InvoiceDate,price=UnitPrice,customer=CustomerID \\
        --date-format "%m/%d/%Y %H:%M"

Columns are header names or 0-based indexes. Ids are namespaced by `source` (default: the file's stem, lower-case)
so data from different exports never collide: customer `cdnow_master:00001`; orders `SOURCE:ORDER` with an order
column, else `SOURCE:CUSTOMER:DATE:N` (the N-th line of that customer and day), which makes re-imports update in
place. Lines become order items; without a product column an item has no product. Each order gets a payment of its
total. Everything goes in one transaction: a bad line aborts the import (with file, line and field) unless
`skip_bad`, which skips it and counts the reason.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from shopdesk.output import UserError
from store.db import Store
from store.importers.common import BadInputError, BulkWriter, previous_runs, record_run
from store.importers.reading import open_text
from store.models import Customer, Order, OrderItem, Payment, Product

FIELDS = ("customer", "date", "amount", "order", "product", "quantity", "price")
REQUIRED = ("customer", "date")


def parse_columns(spec: str) -> dict[str, str]:
    """Parse `customer=0,date=1,amount=3` into {field: column}; unknown fields are a UserError."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if "=" not in part:
            raise UserError(f"--columns: {part!r} is not FIELD=COLUMN")
        name, col = (x.strip() for x in part.split("=", 1))
        if name not in FIELDS:
            raise UserError(f"--columns: unknown field {name!r} (known: {', '.join(FIELDS)})")
        if not col:
            raise UserError(f"--columns: no column given for {name!r}")
        mapping[name] = col
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        raise UserError(f"--columns: missing {', '.join(missing)} (customer, date and amount or price are required)")
    if "amount" not in mapping and "price" not in mapping:
        raise UserError("--columns: give amount=COLUMN, or price=COLUMN (with quantity) to compute it")
    return mapping


def _delimiter(value: str) -> str | None:
    if value in ("ws", "whitespace", " "):
        return None
    value = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";"}.get(value, value)
    if len(value) != 1:
        raise UserError(f"--delimiter must be ws, ',', ';' or '\\t', not {value!r}")
    return value


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


def _source_name(path: Path) -> str:
    name = path.name.split(".")[0].lower()
    return re.sub(r"[^a-z0-9_-]+", "_", name) or "transactions"


class _Skip(Exception):
    def __init__(self, reason: str, error: BadInputError):
        self.reason, self.error = reason, error


def import_transactions(
    store: Store,
    path: Path,
    columns: dict[str, str],
    delimiter: str = ",",
    date_format: str | None = None,
    gzip_mode: Literal["auto", "yes", "no"] = "auto",
    skip_bad: bool = False,
    header: bool = True,
    source: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Import a transaction file in one transaction; returns counts, and with skip_bad the skipped rows per reason."""
    from tqdm import tqdm

    path = Path(path)
    delim = _delimiter(delimiter)
    source = source or _source_name(path)
    skipped: Counter[str] = Counter()
    customers: dict[str, datetime] = {}
    orders: dict[str, dict[str, Any]] = {}
    items: list[dict[str, Any]] = []
    products: set[str] = set()
    per_day: Counter[tuple[str, str]] = Counter()
    date_cache: dict[str, datetime] = {}
    rows_seen = 0

    with open_text(path, gzip_mode) as f:
        rows = _rows(f, delim)
        index: dict[str, int] = {}
        first = next(rows, None)
        if first is None:
            raise BadInputError(path, "the file is empty")
        if header:
            names = [h.strip() for h in first[1]]
            for fld, col in columns.items():
                if col in names:
                    index[fld] = names.index(col)
                elif col.isdigit() and int(col) < len(names):
                    index[fld] = int(col)
                else:
                    raise BadInputError(
                        path,
                        f"unknown column {col!r} in the mapping (the header has: {', '.join(names)})",
                        first[0],
                        fld,
                    )
            body = rows
        else:
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

            def chain():
                yield first
                yield from rows

            body = chain()
        width = max(index.values()) + 1

        def number(text: str, line: int, fld: str) -> Decimal:
            try:
                value = Decimal(text.replace("$", "").replace(",", "").strip())
            except InvalidOperation:
                raise _Skip("bad number", BadInputError(path, f"bad number {text!r}", line, fld)) from None
            if not value.is_finite():
                raise _Skip("bad number", BadInputError(path, f"bad number {text!r}", line, fld))
            return value

        def when(text: str, line: int) -> datetime:
            got = date_cache.get(text)
            if got is None:
                try:
                    got = datetime.strptime(text, date_format) if date_format else datetime.fromisoformat(text)
                except ValueError:
                    expected = date_format or "ISO 8601, e.g. 2026-10-31"
                    raise _Skip(
                        "bad date",
                        BadInputError(
                            path, f"bad date {text!r} (expected {expected}; set --date-format)", line, "date"
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
                cust = parts[index["customer"]].strip()
                if not cust:
                    raise _Skip("missing customer", BadInputError(path, "no customer id", line, "customer"))
                t = when(parts[index["date"]].strip(), line)
                qty = number(parts[index["quantity"]], line, "quantity") if "quantity" in index else Decimal(1)
                if qty <= 0:
                    raise _Skip(
                        "negative or zero quantity",
                        BadInputError(
                            path, f"bad number: quantity {qty} is not positive (a cancellation?)", line, "quantity"
                        ),
                    )
                if qty != qty.to_integral_value():
                    raise _Skip(
                        "bad number", BadInputError(path, f"bad number: quantity {qty} is not whole", line, "quantity")
                    )
                if "amount" in index:
                    amount = number(parts[index["amount"]], line, "amount")
                    unit = (amount / qty).quantize(Decimal("0.01"))
                else:
                    unit = number(parts[index["price"]], line, "price")
                    amount = unit * qty
                if amount < 0 or unit < 0:
                    raise _Skip(
                        "negative amount",
                        BadInputError(
                            path,
                            f"bad number: negative amount {amount}",
                            line,
                            "amount" if "amount" in index else "price",
                        ),
                    )
            except _Skip as skip:
                if not skip_bad:
                    bar.close()
                    raise skip.error from None
                skipped[skip.reason] += 1
                continue
            cid = f"{source}:{cust}"[:64]
            customers[cid] = min(t, customers.get(cid, t))
            if "order" in index and parts[index["order"]].strip():
                oid = f"{source}:{parts[index['order']].strip()}"[:64]
            else:
                key = (cust, t.isoformat())
                per_day[key] += 1
                oid = f"{source}:{cust}:{t:%Y%m%d%H%M}:{per_day[key]}"[:64]
            order = orders.get(oid)
            if order is None:
                order = orders[oid] = {
                    "id": oid,
                    "customer_id": cid,
                    "status": "delivered",
                    "created_at": t,
                    "updated_at": t,
                    "total": Decimal(0),
                    "address": None,
                    "details": {},
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
                pid = f"{source}:{parts[index['product']].strip()}"[:64]
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
            "kind": "payment",
            "amount": o["total"],
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
        "order_items": len(items),
        "products": len(product_rows),
        "rows": rows_seen - sum(skipped.values()),
    }
    with store.transaction() as session:
        before = previous_runs(session, "transactions", path)
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
    result: dict[str, Any] = {"file": str(path), "source": source, "counts": counts, "skipped": dict(skipped)}
    if before:
        result["note"] = f"this file was imported {before} time(s) before; rows were updated, not duplicated"
    return result
