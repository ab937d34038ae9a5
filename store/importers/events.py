r"""Import behaviour events (views, searches, carts, purchases, returns, reviews, support contacts) from CSV or JSONL.

    shopdesk store import events events.csv
    shopdesk store import events ga4.jsonl --skip-bad \
        --columns customer=user_id,kind=event_name,time=event_timestamp,product=item_id,query=search_term
    shopdesk store import events shopify_events.csv --ids-from online_retail

Fields: customer, kind and time are required; product, query, order, session and id are optional. A field not named
in `--columns` is read from a column with its own name or a usual one (customer_id, user_id, event_name, timestamp,
item_id, search_term, order_id, session_id, event_id, ...); the result says which column each field came from.
Event names are mapped onto the store's kinds (page_view -> view, add_to_cart -> cart, refund -> return, ...).
Times are ISO 8601 (a zone is converted to UTC, which is how the store keeps times), YYYYMMDD, or epoch seconds,
milliseconds or microseconds. The customer must already be in the store. With `ids_from`, customer, product and order
ids are looked up as `SOURCE:ID`, the way `store import transactions` stored them.

An event's key is the exporter's event id (`SOURCE:ID` with `ids_from`), else a hash of its customer, kind, time,
product, query and order, so re-importing a file updates in place instead of duplicating. Everything goes in one
transaction: a bad row aborts the import (with file, line and field) unless `skip_bad`, which skips it and counts
the reason.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopdesk.output import UserError
from store.db import Store
from store.importers.common import BadInputError, BulkWriter, parse_mapping, previous_runs, record_run, source_name
from store.importers.reading import jsonl_records, open_text
from store.importers.transactions import clean_id, detect_delimiter
from store.models import EVENT_KINDS, Customer, Event

FIELDS = ("customer", "kind", "time", "product", "query", "order", "session", "id")
REQUIRED = ("customer", "kind", "time")
# Column names tried, in order, for a field not named in --columns (compared without case).
USUAL_COLUMNS = {
    "customer": ("customer", "customer_id", "customerid", "user_id", "userid", "user", "user_pseudo_id", "client_id"),
    "kind": ("kind", "event", "event_name", "event_type", "type", "action"),
    "time": ("time", "timestamp", "event_timestamp", "event_time", "occurred_at", "created_at", "date", "datetime"),
    "product": ("product", "product_id", "item_id", "sku", "productid"),
    "query": ("query", "search_term", "search_query", "search", "q"),
    "order": ("order", "order_id", "transaction_id", "orderid"),
    "session": ("session", "session_id", "ga_session_id", "visit_id"),
    "id": ("id", "event_id", "message_id", "eventid"),
}
# What analytics tools and shop platforms call each kind (GA4, Shopify, Segment and plain words), after
# lower-casing and turning spaces and dashes into underscores.
KIND_NAMES = {
    "view": (
        "view", "page_view", "pageview", "page_viewed", "view_item", "item_view", "product_view", "product_viewed",
        "viewed_product", "detail_view",
    ),
    "search": ("search", "view_search_results", "search_submitted", "products_searched", "site_search"),
    "cart": ("cart", "add_to_cart", "addtocart", "added_to_cart", "product_added", "product_added_to_cart", "cart_add"),
    "purchase": (
        "purchase", "purchased", "order", "order_completed", "order_placed", "checkout_completed", "transaction",
    ),
    "review": ("review", "product_reviewed", "review_submitted", "rating"),
    "return": ("return", "returned", "return_requested", "refund", "refunded", "order_refunded"),
    "support": ("support", "contact", "chat", "support_ticket", "ticket", "contact_support", "support_contact"),
}
KINDS = {name: kind for kind, names in KIND_NAMES.items() for name in names}
ACCEPTED_KINDS = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in KIND_NAMES.items())

SNIFF_RECORDS = 1000
BATCH = 50_000  # rows written per statement batch, inside the import's one transaction
MAX_LENGTH = {"product": 64, "order": 64, "session": 128, "id": 128}
QUERY_LENGTH = 500
_EPOCH = datetime(1970, 1, 1)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def parse_time(value: Any) -> datetime:
    """A naive UTC datetime from ISO 8601 text (a zone is converted to UTC), YYYYMMDD[HHMMSS], or an epoch number in
    seconds, milliseconds or microseconds (told apart by size); ValueError when it is none of these.
    """
    if isinstance(value, bool):
        raise ValueError(value)
    text = str(value).strip()
    if _NUMBER.fullmatch(text):
        if len(text) in (8, 14) and text[:2] in ("19", "20"):  # GA4's event_date and compact stamps, not epochs
            return datetime.strptime(text, "%Y%m%d" if len(text) == 8 else "%Y%m%d%H%M%S")
        number = float(text)
        size = abs(number)
        seconds = number / 1e6 if size >= 1e14 else number / 1e3 if size >= 1e11 else number
        return _EPOCH + timedelta(seconds=seconds)
    if text.upper().endswith(" UTC"):  # BigQuery's text form of a TIMESTAMP
        text = text[:-4] + "+00:00"
    t = datetime.fromisoformat(text)
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def normalise_kind(value: Any) -> str | None:
    """The store's kind for an exported event name, or None when the name is not one KIND_NAMES knows."""
    return KINDS.get(re.sub(r"[\s\-]+", "_", str(value).strip().lower()))


def event_key(customer: str, kind: str, time: datetime, product: str | None, query: str | None,
              order: str | None) -> str:
    """The key of an event without an exporter's id: the same event content always gives the same key."""
    content = "\x1f".join((customer, kind, time.isoformat(), product or "", query or "", order or ""))
    return "sha1:" + hashlib.sha1(content.encode("utf-8")).hexdigest()


def _records(path: Path) -> tuple[list[str] | None, Iterator[tuple[int, dict[str, Any]]]]:
    """(the CSV header, or None for JSONL; (line, record) per non-blank row). JSONL when the suffix says so or the
    first character is '{'; otherwise CSV with a header line, delimited by comma, semicolon or tab.
    """
    with open_text(path) as f:
        head = list(itertools.islice(f, 200))
    if not any(line.strip() for line in head):
        raise BadInputError(path, "the file is empty")
    first = next(line for line in head if line.strip())
    if path.suffix.lower() in (".jsonl", ".ndjson") or first.lstrip().startswith("{"):
        return None, jsonl_records(path)
    delimiter = detect_delimiter(head) or ","  # a header line has no runs-of-whitespace format
    header = next(csv.reader([first], delimiter=delimiter))
    return [h.strip() for h in header], _csv(path, delimiter)


def _csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = [h.strip() for h in next(reader)]
        for parts in reader:
            if any(p.strip() for p in parts):
                # a short line leaves its last columns out of the record: they are reported as missing
                yield reader.line_num, dict(zip(header, parts, strict=False))


def _resolve_columns(path: Path, mapping: dict[str, str], names: list[str]) -> dict[str, str]:
    """{field: column} from --columns and, for the other fields, the usual column names found in `names`."""
    lower = {n.lower(): n for n in reversed(names)}  # the first of two names that differ only in case wins
    columns: dict[str, str] = {}
    for fld in FIELDS:
        if fld in mapping:
            col = mapping[fld]
            found = col if col in names else lower.get(col.lower())
            if found is None:
                raise BadInputError(
                    path, f"unknown column {col!r} in --columns (the file has: {', '.join(names)})", 1, fld
                )
            columns[fld] = found
            continue
        found = next((lower[c] for c in USUAL_COLUMNS[fld] if c in lower), None)
        if found is not None:
            columns[fld] = found
        elif fld in REQUIRED:
            raise BadInputError(
                path, f"missing column: none of {', '.join(USUAL_COLUMNS[fld])} (the file has: {', '.join(names)}); "
                f"name it with --columns {fld}=COLUMN", 1, fld,
            )
    return columns


def parse_event_columns(spec: str | None) -> dict[str, str]:
    """Parse `--columns customer=user_id,kind=event_name,...` (any subset of FIELDS); None is no mapping."""
    return parse_mapping(spec, FIELDS) if spec else {}


class _Skip(Exception):
    def __init__(self, reason: str, error: BadInputError):
        self.reason, self.error = reason, error


def import_events(
    store: Store,
    path: Path,
    columns: dict[str, str] | None = None,
    skip_bad: bool = False,
    ids_from: str | None = None,
    source: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Import an event file in one transaction; returns counts, the column each field came from, and with
    skip_bad the skipped rows per reason.
    """
    from tqdm import tqdm

    path = Path(path)
    if ids_from is not None and not ids_from.strip():
        raise UserError("--ids-from needs the source name the customers were imported under")
    prefix = f"{ids_from.strip()}:" if ids_from else ""
    source = source or source_name(path, "events")
    header, records = _records(path)
    head = list(itertools.islice(records, SNIFF_RECORDS))
    if not head:
        raise BadInputError(path, "the file has a header but no rows")
    names = header if header is not None else list(dict.fromkeys(k for _, rec in head for k in rec))
    cols = _resolve_columns(path, columns or {}, names)
    with store.read() as session:
        customer_ids = set(session.scalars(select(Customer.id)))

    skipped: Counter[str] = Counter()
    counts: Counter[str] = Counter({kind: 0 for kind in EVENT_KINDS})
    batch: dict[str, dict[str, Any]] = {}
    keys: set[int] = set()  # hashes of the keys written so far, to count rows repeated in the file
    seen = duplicates = across = new = updated = 0

    def text(record: dict[str, Any], fld: str) -> str | None:
        """The field's value as stripped text; None when the file has no such column or the value is empty."""
        value = record.get(cols[fld]) if fld in cols else None
        if value is None or isinstance(value, (dict, list)):
            return None
        value = str(value).strip()
        return value or None

    def ident(record: dict[str, Any], fld: str, line: int) -> str | None:
        value = text(record, fld)
        if value is None:
            return None
        value = prefix + clean_id(value) if fld in ("product", "order", "id") else value
        if len(value) > MAX_LENGTH[fld]:
            raise _Skip("too long", BadInputError(
                path, f"{value[:40]!r}... is longer than {MAX_LENGTH[fld]} characters", line, fld))
        return value

    # One transaction for the whole file, written in batches as it is read: memory stays bounded at any size, and a
    # bad row (or any error) rolls back every batch before it.
    with store.transaction() as session, tqdm(desc=f"import {path.name}", unit="rows", disable=not progress,
                                               mininterval=0.5) as bar:
        before = previous_runs(session, "events", path)
        writer = BulkWriter(session)

        def flush() -> None:
            nonlocal new, updated
            inserted, changed = writer.upsert(Event, list(batch.values()), key="key")
            new, updated = new + inserted, updated + changed
            batch.clear()

        for line, record in itertools.chain(head, records):
            seen += 1
            bar.update(1)
            try:
                for fld in REQUIRED:
                    if cols[fld] not in record:
                        raise _Skip("missing column", BadInputError(
                            path, f"missing column {cols[fld]!r}", line, fld))
                raw_customer = text(record, "customer")
                if raw_customer is None:
                    raise _Skip("missing customer", BadInputError(path, "no customer id", line, "customer"))
                customer = prefix + clean_id(raw_customer)
                if customer not in customer_ids:
                    raise _Skip("unknown customer", BadInputError(
                        path, f"unknown customer {customer!r} (import the customers first"
                        + ("" if prefix else "; --ids-from SOURCE if they came from `store import transactions`")
                        + ")", line, "customer"))
                raw_kind = text(record, "kind")
                kind = normalise_kind(raw_kind) if raw_kind else None
                if kind is None:
                    raise _Skip("unknown kind", BadInputError(
                        path, f"unknown event kind {raw_kind or ''!r} (accepted: {ACCEPTED_KINDS})", line, "kind"))
                raw_time = record.get(cols["time"])
                try:
                    when = parse_time(raw_time)
                except (ValueError, OverflowError, TypeError):
                    raise _Skip("bad date", BadInputError(
                        path, f"{raw_time!r} is not a date (expected ISO 8601 like 2025-03-01T14:05:00Z, YYYYMMDD, "
                        "or epoch seconds or milliseconds)", line, "time")) from None
                product = ident(record, "product", line)
                order = ident(record, "order", line)
                session_id = ident(record, "session", line)
                event_id = ident(record, "id", line)
            except _Skip as skip:
                if not skip_bad:
                    raise skip.error from None
                skipped[skip.reason] += 1
                continue
            query = text(record, "query")
            query = query[:QUERY_LENGTH] if query else None
            key = event_id or event_key(customer, kind, when, product, query, order)
            digest = hash(key)
            if digest in keys:  # the same event twice in the file: the later row wins
                duplicates += 1
                across += key not in batch  # written with an earlier batch: its upsert counts as an update
                counts[batch[key]["kind"] if key in batch else kind] -= 1
            keys.add(digest)
            counts[kind] += 1
            batch[key] = {
                "key": key,
                "customer_id": customer,
                "kind": kind,
                "occurred_at": when,
                "product_id": product,
                "query": query,
                "order_id": order,
                "session_id": session_id,
                "source": source,
            }
            if len(batch) >= BATCH:
                flush()
        if not keys:
            raise BadInputError(path, f"no usable rows: all {seen} were skipped ({dict(skipped)})")
        flush()
        # a row repeating one of an earlier batch updated it: that is a repeat in this file, not an earlier import's
        totals = {"events": len(keys), "new": new, "updated": updated - across, "repeated_in_file": duplicates,
                  **counts}
        record_run(session, "events", path, {**totals, "skipped": dict(skipped)})
    result: dict[str, Any] = {
        "file": str(path),
        "source": source,
        "counts": totals,
        "skipped": dict(skipped),
        "columns": cols,
    }
    if before:
        result["note"] = f"this file was imported {before} time(s) before; rows were updated, not duplicated"
    return result
