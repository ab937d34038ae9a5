"""`store copy`: the whole shop into an empty database (PostgreSQL by COPY), all or nothing."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from shopdesk.output import UserError
from store.models import Base, Event, Order, Ticket
from store.transfer import copy_store


def _counts(s) -> dict[str, int]:
    with s.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in Base.metadata.sorted_tables}


def test_the_sample_shop_is_copied_whole_and_reads_the_same(sample_store, store):
    from tools.analytics import summarize_segments
    from tools.context import ShopContext

    report = copy_store(sample_store, store.url, progress=False)
    want = _counts(sample_store)
    assert _counts(store) == want and report["rows"] == sum(want.values())
    assert report["method"] == ("COPY" if store.engine.dialect.name == "postgresql" else "INSERT")
    with sample_store.read() as a, store.read() as b:
        for o in a.scalars(select(Order).order_by(Order.id).limit(50)):
            c = b.get(Order, o.id)
            assert (c.customer_id, c.status, c.created_at, float(c.total), c.details, c.address) == \
                (o.customer_id, o.status, o.created_at, float(o.total), o.details, o.address)
    # the marketer's analytics give the same answer on the copy
    from shopdesk.settings import get_settings

    def segments(s):
        return summarize_segments(ShopContext(store=s, settings=get_settings(), role="marketer")).model_dump()

    got, want = segments(store), segments(sample_store)
    # the same counts and shares; the value model's fit may differ in the last cents (PostgreSQL sums Numeric exactly)
    assert [r["customers"] for r in got["rows"]] == [r["customers"] for r in want["rows"]]
    for a, b in zip(got["rows"], want["rows"], strict=True):
        numbers = [k for k, v in b.items() if isinstance(v, float)]
        assert {k: v for k, v in a.items() if k not in numbers} == {k: v for k, v in b.items() if k not in numbers}
        assert [a[k] for k in numbers] == pytest.approx([b[k] for k in numbers], rel=1e-5)
    # a new row after the copy takes the next key, not a copied one
    with store.read() as s:
        top = s.scalar(select(func.max(Event.id)))
        someone = s.scalar(select(Event.customer_id).limit(1))
    assert top
    with store.transaction() as s:
        e = Event(key="after-the-copy", customer_id=someone, kind="view", occurred_at=datetime(2026, 11, 1))
        s.add(e)
        s.flush()
        assert e.id > top


def test_a_destination_with_data_is_refused_and_left_as_it_was(sample_store, tau2_store):
    before = _counts(tau2_store)
    with pytest.raises(UserError, match="already holds data"):
        copy_store(sample_store, tau2_store.url, progress=False)
    assert _counts(tau2_store) == before


def test_a_copy_that_fails_midway_leaves_the_destination_empty(sample_store, store, monkeypatch):
    import store.transfer as transfer

    real = transfer._rows

    def failing(src, table, batch):
        if table.name == Ticket.__tablename__ or table.name == "reviews":
            raise RuntimeError("disk full")
        yield from real(src, table, batch)

    monkeypatch.setattr(transfer, "_rows", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        copy_store(sample_store, store.url, progress=False)
    assert not any(_counts(store).values())
