"""Import the tau2-bench retail database (db.json: users, products with variants, orders).

tau2's ids are kept as they are (`james_li_5688`, `#W2611340`, item ids as variant ids, `credit_card_9513926`), as
are each order's items, fulfillments (one row per tracking id), payment history and any cancel/return/exchange
fields (into `details`). tau2 orders carry no dates, so the importer assigns deterministic ones derived from the
order id and consistent with the status, ending at `AS_OF` (2026-10-31): pending orders within the last 3 days,
processed within 3-10 days, delivered and cancelled ones 10-360 days back; updated_at follows the status
(shipped after a day, delivered after five). Signup dates are 30-400 days before a customer's first order.
Re-importing updates rows in place (upserts; an order's items, fulfillments and payments are replaced).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from store.db import Store
from store.importers.common import BadInputError, BulkWriter, previous_runs, record_run, stable_digits
from store.models import (
    ORDER_STATUSES,
    Customer,
    Fulfillment,
    Order,
    OrderItem,
    Payment,
    PaymentMethod,
    Product,
    Variant,
)

AS_OF = datetime(2026, 10, 31, 23, 59, 59)
SOURCE = "tau2"
ORDER_KEYS = {"order_id", "user_id", "address", "items", "status", "fulfillments", "payment_history"}


def _frac(*parts: Any) -> float:
    return int(stable_digits(*parts, digits=9)) / 1e9


def order_dates(order_id: str, status: str) -> tuple[datetime, datetime]:
    """Deterministic (created_at, updated_at) for a tau2 order, consistent with its status."""
    u = _frac("created", order_id)
    if status == "pending":
        age = 0.1 + 2.9 * u
    elif status == "processed":
        age = 3 + 7 * u
    else:
        age = 10 + 350 * u
    created = (AS_OF - timedelta(days=age)).replace(microsecond=0)
    step = {"pending": 0, "processed": 1, "delivered": 5, "cancelled": 0.2}.get(status, 5)
    return created, min(created + timedelta(days=step), AS_OF)


def _need(record: dict, key: str, path: Path, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise BadInputError(path, f"{where}: missing field", field=key)
    return record[key]


def _money(value: Any, path: Path, where: str, field: str) -> Decimal:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise BadInputError(path, f"{where}: bad number {value!r}", field=field) from None


def load_db(path: Path) -> dict[str, Any]:
    """The tau2 retail db.json as a dict, checked to be readable UTF-8 JSON."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise BadInputError(path, "the file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BadInputError(path, f"wrong encoding: byte {raw[exc.start]:#04x} is not UTF-8", line) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(path, f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    for key in ("users", "products", "orders"):
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise BadInputError(path, "expected a tau2 retail db.json with users, products and orders", field=key)
    return data


def import_tau2(store: Store, path: Path, progress: bool = False) -> dict[str, Any]:
    """Import tau2 retail's db.json in one transaction; returns counts per entity."""
    path = Path(path)
    data = load_db(path)
    customers, pms, products, variants = [], [], [], []
    orders, items, fulfillments, payments = [], [], [], []
    for pid, p in data["products"].items():
        where = f"products.{pid}"
        products.append(
            {
                "id": str(_need(p, "product_id", path, where)),
                "name": _need(p, "name", path, where),
                "category": p["name"],
                "brand": None,
                "description": None,
                "rating": None,
                "rating_count": None,
                "source": SOURCE,
                "updated_at": AS_OF,
            }
        )
        for vid, v in _need(p, "variants", path, where).items():
            w = f"{where}.variants.{vid}"
            variants.append(
                {
                    "id": str(_need(v, "item_id", path, w)),
                    "product_id": str(p["product_id"]),
                    "options": _need(v, "options", path, w),
                    "price": _money(_need(v, "price", path, w), path, w, "price"),
                    "available": bool(_need(v, "available", path, w)),
                }
            )
    variant_ids = {v["id"] for v in variants}
    first_order: dict[str, datetime] = {}
    for oid, o in data["orders"].items():
        where = f"orders.{oid}"
        for key in sorted(ORDER_KEYS):
            _need(o, key, path, where)
        status = o["status"]
        if status not in ORDER_STATUSES:
            raise BadInputError(
                path,
                f"{where}: unknown status {status!r} (expected one of {', '.join(ORDER_STATUSES)})",
                field="status",
            )
        created, updated = order_dates(o["order_id"], status)
        first_order[o["user_id"]] = min(created, first_order.get(o["user_id"], created))
        total = Decimal("0")
        for n, it in enumerate(o["items"]):
            w = f"{where}.items[{n}]"
            price = _money(_need(it, "price", path, w), path, w, "price")
            vid = str(_need(it, "item_id", path, w))
            if vid not in variant_ids:
                raise BadInputError(path, f"{w}: item_id {vid} is not a variant of any product", field="item_id")
            total += price
            items.append(
                {
                    "order_id": o["order_id"],
                    "product_id": str(_need(it, "product_id", path, w)),
                    "variant_id": vid,
                    "name": _need(it, "name", path, w),
                    "quantity": 1,
                    "unit_price": price,
                    "options": it.get("options") or {},
                }
            )
        for f in o["fulfillments"]:
            for tracking in _need(f, "tracking_id", path, where + ".fulfillments"):
                fulfillments.append(
                    {
                        "order_id": o["order_id"],
                        "tracking_id": str(tracking),
                        "carrier": None,
                        "variant_ids": [str(i) for i in f.get("item_ids", [])],
                        "shipped_at": created + timedelta(days=1),
                    }
                )
        for n, t in enumerate(o["payment_history"]):
            w = f"{where}.payment_history[{n}]"
            kind = _need(t, "transaction_type", path, w)
            payments.append(
                {
                    "order_id": o["order_id"],
                    "kind": kind,
                    "amount": _money(_need(t, "amount", path, w), path, w, "amount"),
                    "payment_method_id": _need(t, "payment_method_id", path, w),
                    "created_at": created if kind == "payment" else updated,
                }
            )
        details = {k: v for k, v in o.items() if k not in ORDER_KEYS}
        orders.append(
            {
                "id": o["order_id"],
                "customer_id": o["user_id"],
                "status": status,
                "created_at": created,
                "updated_at": updated,
                "total": total,
                "address": o["address"],
                "details": details,
                "source": SOURCE,
            }
        )
    for uid, u in data["users"].items():
        where = f"users.{uid}"
        name = _need(u, "name", path, where)
        addr = _need(u, "address", path, where)
        first = first_order.get(uid, AS_OF)
        customers.append(
            {
                "id": _need(u, "user_id", path, where),
                "first_name": name.get("first_name"),
                "last_name": name.get("last_name"),
                "email": _need(u, "email", path, where),
                "address1": addr.get("address1"),
                "address2": addr.get("address2"),
                "city": addr.get("city"),
                "state": addr.get("state"),
                "country": addr.get("country"),
                "zip": addr.get("zip"),
                "signup_date": (first - timedelta(days=30 + 370 * _frac("signup", uid))).replace(microsecond=0),
                "source": SOURCE,
            }
        )
        for pm_id, pm in _need(u, "payment_methods", path, where).items():
            w = f"{where}.payment_methods.{pm_id}"
            pms.append(
                {
                    "id": _need(pm, "id", path, w),
                    "customer_id": u["user_id"],
                    "kind": _need(pm, "source", path, w),
                    "brand": pm.get("brand"),
                    "last_four": pm.get("last_four"),
                    "balance": _money(pm["balance"], path, w, "balance") if "balance" in pm else None,
                }
            )
    known = {c["id"] for c in customers}
    for o in orders:
        if o["customer_id"] not in known:
            raise BadInputError(
                path, f"orders.{o['id']}: user_id {o['customer_id']} is not among the users", field="user_id"
            )

    counts = {
        "customers": len(customers),
        "payment_methods": len(pms),
        "products": len(products),
        "variants": len(variants),
        "orders": len(orders),
        "order_items": len(items),
        "fulfillments": len(fulfillments),
        "payments": len(payments),
    }
    with store.transaction() as session:
        before = previous_runs(session, "tau2", path)
        w = BulkWriter(session)
        order_ids = [o["id"] for o in orders]
        for child in (OrderItem, Fulfillment, Payment):
            w.delete_where_in(child, "order_id", order_ids)
        w.upsert(Customer, customers)
        w.upsert(PaymentMethod, pms)
        w.upsert(Product, products)
        w.upsert(Variant, variants)
        w.upsert(Order, orders)
        w.insert(OrderItem, items)
        w.insert(Fulfillment, fulfillments)
        w.insert(Payment, payments)
        record_run(session, "tau2", path, counts)
    result: dict[str, Any] = {"file": str(path), "counts": counts}
    if before:
        result["note"] = f"this file was imported {before} time(s) before; rows were updated, not duplicated"
    return result
