"""Importing behaviour events: exports load with their event names mapped; bad rows fail clearly and change nothing;
re-imports add nothing.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from shopdesk.cli import app
from shopdesk.output import UserError
from store.importers.common import BadInputError
from store.importers.events import KIND_NAMES, import_events, normalise_kind, parse_event_columns, parse_time
from store.models import EVENT_KINDS, Customer, Event, ImportRun

GA4_CSV = """event_id,user_id,event_name,event_timestamp,item_id,search_term,transaction_id,ga_session_id
e1,c1,view_search_results,2025-03-01T10:00:00Z,,usb cable,,s1
e2,c1,view_item,2025-03-01T10:01:00+02:00,P-1,,,s1
e3,c1,add_to_cart,1740823500000,P-1,,,s1
e4,c1,purchase,1740823560,P-1,,T-9,s1
e5,c2,page_view,2025-03-02 09:00:00,P-2,,,
"""
JSONL_ROWS = [
    {"customer": "c2", "kind": "Product Viewed", "time": "2025-03-03T08:00:00", "product": "P-3"},
    {"customer": "c2", "kind": "refund", "time": 1741046400, "order": 42},
    {"customer": "c1", "kind": "contact", "time": "20250305"},
    {"customer": "c1", "kind": "product_reviewed", "time": "2025-03-06 12:00:00 UTC", "product": "P-1"},
]


@pytest.fixture
def shop(sqlite_store):
    """A store with customers c1 and c2, and one a transaction import named `retail:17850`."""
    _add_customers(sqlite_store)
    return sqlite_store


def _add_customers(store) -> None:
    with store.transaction() as s:
        s.add_all([Customer(id=cid, source="test") for cid in ("c1", "c2", "retail:17850")])


def event_count(store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(Event))


def runs(store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(ImportRun))


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_and_jsonl_exports_on_both_engines(store, tmp_path):
    _add_customers(store)
    result = import_events(store, write(tmp_path, "ga4.csv", GA4_CSV))
    assert result["columns"] == {
        "customer": "user_id", "kind": "event_name", "time": "event_timestamp", "product": "item_id",
        "query": "search_term", "order": "transaction_id", "session": "ga_session_id", "id": "event_id",
    }
    assert result["counts"]["events"] == result["counts"]["new"] == 5
    assert {k: result["counts"][k] for k in ("view", "search", "cart", "purchase")} == {
        "view": 2, "search": 1, "cart": 1, "purchase": 1,
    }
    jsonl = write(tmp_path, "more.jsonl", "\n".join(json.dumps(r) for r in JSONL_ROWS) + "\n")
    assert import_events(store, jsonl)["counts"]["new"] == 4
    with store.read() as s:
        got = {e.key: e for e in s.scalars(select(Event))}
    assert len(got) == 9
    assert got["e2"].occurred_at == datetime(2025, 3, 1, 8, 1)  # +02:00 stored as UTC, without a zone
    assert got["e3"].occurred_at == datetime(2025, 3, 1, 10, 5)  # epoch milliseconds
    assert got["e4"].occurred_at == datetime(2025, 3, 1, 10, 6)  # epoch seconds
    assert (got["e4"].kind, got["e4"].order_id, got["e4"].product_id, got["e4"].session_id) == (
        "purchase", "T-9", "P-1", "s1",
    )
    assert got["e1"].query == "usb cable" and got["e1"].product_id is None
    assert {e.source for e in got.values()} == {"ga4", "more"}
    by_kind = {e.kind: e for e in got.values() if e.key.startswith("sha1:")}  # no id column: content hashes
    assert set(by_kind) == {"view", "return", "support", "review"}
    assert by_kind["return"].order_id == "42" and by_kind["return"].occurred_at == datetime(2025, 3, 4)
    assert by_kind["support"].occurred_at == datetime(2025, 3, 5)
    assert by_kind["review"].occurred_at == datetime(2025, 3, 6, 12)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("page_view", "view"), ("view_item", "view"), ("product_view", "view"), ("Product Viewed", "view"),
        ("add_to_cart", "cart"), ("addToCart", "cart"), ("Product Added", "cart"),
        ("purchase", "purchase"), ("order", "purchase"), ("Order Completed", "purchase"),
        ("search", "search"), ("view_search_results", "search"),
        ("refund", "return"), ("return", "return"), ("review", "review"),
        ("support", "support"), ("contact", "support"), ("chat", "support"), ("CHAT", "support"),
        ("session_start", None), ("", None),
    ],
)
def test_event_names(name, kind):
    assert normalise_kind(name) == kind


def test_every_kind_has_names():
    assert set(KIND_NAMES) == set(EVENT_KINDS)
    assert all(normalise_kind(kind) == kind for kind in EVENT_KINDS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10)),
        ("2025-03-01T10:00:00-05:00", datetime(2025, 3, 1, 15)),
        ("2025-03-01 10:00:00.250", datetime(2025, 3, 1, 10, 0, 0, 250_000)),
        ("2025-03-01", datetime(2025, 3, 1)),
        ("2025-03-01 10:00:00 UTC", datetime(2025, 3, 1, 10)),
        ("20250301", datetime(2025, 3, 1)),
        (1740823200, datetime(2025, 3, 1, 10)),
        ("1740823200.5", datetime(2025, 3, 1, 10, 0, 0, 500_000)),
        ("1740823200000", datetime(2025, 3, 1, 10)),
        (1740823200000000, datetime(2025, 3, 1, 10)),  # GA4's event_timestamp: microseconds
    ],
)
def test_times(value, expected):
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", ["2025-13-40", "yesterday", "", None, True])
def test_bad_times(value):
    with pytest.raises(ValueError):
        parse_time(value)


# --- one test per kind of bad input: the error names the file, the line and the field; nothing is imported

HEADER = "customer,kind,time,product\n"
GOOD = HEADER + "c1,view,2025-03-01T10:00:00,P-1\nc2,cart,2025-03-01T10:05:00,P-1\n"


def _bad(shop, path, parts: list[str], **kw) -> str:
    before = event_count(shop), runs(shop)
    with pytest.raises(BadInputError) as err:
        import_events(shop, path, **kw)
    message = str(err.value)
    for part in [str(path), *parts]:
        assert part in message, (part, message)
    assert (event_count(shop), runs(shop)) == before
    return message


def test_bad_date(shop, tmp_path):
    path = write(tmp_path, "events.csv", GOOD + "c1,view,2025-13-40,P-2\n")
    _bad(shop, path, ["line 4", "field 'time'", "'2025-13-40' is not a date", "ISO 8601"])


def test_unknown_kind_names_the_accepted_ones(shop, tmp_path):
    path = write(tmp_path, "events.csv", GOOD + "c1,session_start,2025-03-01T10:00:00,\n")
    message = _bad(shop, path, ["line 4", "field 'kind'", "unknown event kind 'session_start'"])
    for name in ("page_view", "add_to_cart", "view_search_results", "refund", "contact"):
        assert name in message


def test_unknown_customer(shop, tmp_path):
    path = write(tmp_path, "events.csv", GOOD + "c9,view,2025-03-01T10:00:00,P-1\n")
    _bad(shop, path, ["line 4", "field 'customer'", "unknown customer 'c9'"])


def test_empty_customer(shop, tmp_path):
    path = write(tmp_path, "events.csv", GOOD + ",view,2025-03-01T10:00:00,P-1\n")
    _bad(shop, path, ["line 4", "field 'customer'", "no customer id"])


def test_missing_column(shop, tmp_path):
    path = write(tmp_path, "events.csv", "customer,time\nc1,2025-03-01T10:00:00\n")
    _bad(shop, path, ["line 1", "field 'kind'", "missing column", "--columns kind=COLUMN"])
    path = write(tmp_path, "short.csv", GOOD + "c1,view\n")
    _bad(shop, path, ["line 4", "field 'time'", "missing column 'time'"])
    path = write(tmp_path, "short.jsonl", json.dumps({"customer": "c1", "kind": "view", "time": "2025-03-01"})
                 + "\n" + json.dumps({"customer": "c1", "time": "2025-03-01"}) + "\n")
    _bad(shop, path, ["line 2", "field 'kind'", "missing column 'kind'"])


def test_columns_mapping(shop, tmp_path):
    path = write(tmp_path, "export.csv", "who;what;when;sku\nc1;add_to_cart;2025-03-01T10:00:00;P-1\n")
    result = import_events(shop, path, parse_event_columns("customer=who,kind=what,time=when,product=sku"))
    assert result["counts"]["cart"] == 1 and result["columns"]["product"] == "sku"  # semicolons detected
    _bad(shop, path, ["line 1", "field 'time'", "unknown column 'stamp'"],
         columns=parse_event_columns("customer=who,kind=what,time=stamp"))
    with pytest.raises(UserError, match="unknown field 'colour'"):
        parse_event_columns("customer=who,colour=red")


def test_gzipped_jsonl(shop, tmp_path):
    import gzip

    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in JSONL_ROWS) + "\n")
    assert import_events(shop, path)["counts"]["events"] == 4


def test_empty_files(shop, tmp_path):
    _bad(shop, write(tmp_path, "e.csv", ""), ["the file is empty"])
    _bad(shop, write(tmp_path, "h.csv", HEADER), ["no rows"])


@pytest.fixture(params=["one batch", "a batch per row"])
def batches(request, monkeypatch):
    """The importer writes in batches inside its one transaction: the same results with a batch per row."""
    import store.importers.events as events

    if request.param == "a batch per row":
        monkeypatch.setattr(events, "BATCH", 1)


def test_all_or_nothing_and_skip_bad(shop, tmp_path, batches):
    rows = [
        "c1,view,2025-03-01T10:00:00,P-1",
        "c2,view,2025-03-01T10:01:00,P-2",
        "c1,teleport,2025-03-01T10:02:00,P-1",
        "c1,view,soon,P-1",
        "c7,view,2025-03-01T10:03:00,P-1",
        ",view,2025-03-01T10:04:00,P-1",
        "c2,purchase,2025-03-01T10:05:00,P-2",
    ]
    path = write(tmp_path, "mixed.csv", HEADER + "\n".join(rows) + "\n")
    _bad(shop, path, ["line 4", "field 'kind'"])
    result = import_events(shop, path, skip_bad=True)
    assert result["skipped"] == {"unknown kind": 1, "bad date": 1, "unknown customer": 1, "missing customer": 1}
    assert result["counts"]["events"] == 3 and event_count(shop) == 3
    with shop.read() as s:
        counts = s.scalars(select(ImportRun.counts).where(ImportRun.kind == "events")).one()
    assert counts["skipped"]["bad date"] == 1
    everything_bad = write(tmp_path, "bad.csv", HEADER + "c7,view,2025-03-01T10:00:00,P-1\n")
    _bad(shop, everything_bad, ["no usable rows"], skip_bad=True)


def test_reimport_adds_nothing(shop, tmp_path, batches):
    path = write(tmp_path, "events.csv", GOOD + "c1,view,2025-03-01T10:00:00,P-1\n")  # the first row again
    first = import_events(shop, path)
    assert first["counts"]["events"] == 2 and first["counts"]["repeated_in_file"] == 1
    again = import_events(shop, path)
    assert again["counts"]["new"] == 0 and again["counts"]["updated"] == 2 and "before" in again["note"]
    # the same events in another file, with the time written another way: the same content hash
    other = write(tmp_path, "copy.csv", HEADER + "c1,page_view,1740823200,P-1\n")
    assert import_events(shop, other)["counts"]["new"] == 0
    assert event_count(shop) == 2
    with_ids = write(tmp_path, "ids.csv", "id,customer,kind,time\ne1,c1,view,2025-03-01T10:00:00\n"
                     "e2,c2,cart,2025-03-01T10:05:00\n")
    assert import_events(shop, with_ids)["counts"]["new"] == 2
    assert import_events(shop, with_ids)["counts"]["new"] == 0
    assert event_count(shop) == 4


def test_ids_from_a_transaction_import(shop, tmp_path):
    path = write(tmp_path, "retail.csv", "event_id,customer,kind,time,order,product\n"
                 "9,17850.0,purchase,2025-03-01T10:00:00,536365,85123A\n")
    _bad(shop, path, ["line 2", "unknown customer '17850'", "--ids-from"])
    import_events(shop, path, ids_from="retail")
    with shop.read() as s:
        event = s.scalars(select(Event)).one()
    assert (event.key, event.customer_id, event.order_id, event.product_id) == (
        "retail:9", "retail:17850", "retail:536365", "retail:85123A",
    )


def test_cli(data_dir, tmp_path):
    runner = CliRunner()
    built = runner.invoke(app, ["store", "init", "--sample", "--customers", "5", "--json"])
    assert built.exit_code == 0, built.output
    sample_events = json.loads(built.stdout)["counts"]["events"]
    path = write(tmp_path, "events.csv", "user_id,event_type,timestamp,item_id\n"
                 "c000001,add_to_cart,2025-03-01T10:00:00,P-1\nc000002,page_view,2025-03-01T10:00:00,P-2\n")
    args = ["store", "import", "events", str(path), "--columns", "customer=user_id,kind=event_type,time=timestamp"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["new"] == 2
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "updated" in text.stdout and "before" in text.stdout
    stats = json.loads(runner.invoke(app, ["store", "stats", "--json"]).stdout)
    assert stats["counts"]["events"] == sample_events + 2
    bad = write(tmp_path, "bad.csv", "user_id,event_type,timestamp\nc000001,view,2025-13-40\nc999999,view,2025-03-01\n")
    r = runner.invoke(app, ["store", "import", "events", str(bad), "--columns", "customer=user_id,kind=event_type"])
    assert r.exit_code == 2 and "line 2" in r.output and "field 'time'" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["store", "import", "events", str(bad), "--skip-bad", "--json"])
    assert r.exit_code == 2 and "no usable rows" in r.output
    r = runner.invoke(app, ["store", "import", "events", str(path), "--columns", "shop=x"])
    assert r.exit_code == 2 and "unknown field 'shop'" in r.output
