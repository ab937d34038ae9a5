"""The shipped eval cases are true for the data: each case's expected tool calls are replayed with the real tools.

For every case: the customer exists; the expected calls exist for the role, bind to the tool signatures and succeed;
a confirmed write leaves the expected order status; an unconfirmed or refused one writes nothing; the probes of
refusal cases are refused by the tools themselves; answer_contains appears in the tools' faithful renderings and
answer_excludes appears in none of them. Search-index tools are only checked for name and arguments (the index is
tested in tests/search).
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import or_, select

from store.models import Customer, Order

REPO = Path(__file__).resolve().parents[2]
CASES_FILE = REPO / "agent" / "evalcases" / "cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
INDEX_TOOLS = {"search_products", "search_reviews", "review_insights", "recommend_products"}
EXPECT_KEYS = {"tool_calls", "answer_contains", "answer_excludes", "order_status", "no_writes"}
YES = re.compile(r"\b(yes|confirm|go ahead|ok)\b|是的|确认|好的", re.IGNORECASE)
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_case_file_covers_what_the_issue_asks():
    assert len(CASES) >= 60
    assert len({c["id"] for c in CASES}) == len(CASES)
    for c in CASES:
        assert set(c) >= {"id", "store", "role", "customer", "turns", "expect"}, c["id"]
        assert c["store"] in ("tau2", "sample") and c["role"] in ("customer", "marketer"), c["id"]
        assert set(c["expect"]) <= EXPECT_KEYS, c["id"]
        assert c["turns"] and all(isinstance(t, str) and t.strip() for t in c["turns"]), c["id"]
        assert (c["customer"] is None) == (c["role"] == "marketer"), c["id"]
        if c["expect"].get("no_writes") is False:  # a write needs the customer's yes in a later turn
            assert len(c["turns"]) >= 2 and YES.search(c["turns"][-1]), c["id"]
    combos = {(c["store"], c["role"]) for c in CASES}
    assert {("tau2", "customer"), ("sample", "customer"), ("sample", "marketer")} <= combos
    langs = {"zh" if any(HAN.search(t) for t in c["turns"]) else "en" for c in CASES}
    assert langs == {"en", "zh"}
    tags = {t for c in CASES for t in c.get("tags", [])}
    assert {"ownership", "injection", "review", "no-confirmation", "refund-other-card"} <= tags


# ------------------------------------------------------------------ replay


@pytest.fixture(scope="module")
def marketer_ctx(sample_db_template, tmp_path_factory):
    """One read-only marketer session on the sample shop: the analytics snapshot is computed once for all cases."""
    from shopdesk.settings import Settings
    from store.db import Store
    from tools.context import ShopContext

    dst = tmp_path_factory.mktemp("sample-marketer") / "shop.db"
    shutil.copy(sample_db_template, dst)
    store = Store(f"sqlite:///{dst}")
    yield ShopContext(store=store, settings=Settings(), role="marketer")
    store.dispose()


def _store_for(case, request, tmp_path):
    from store.db import Store

    template = request.getfixturevalue("tau2_db_template" if case["store"] == "tau2" else "sample_db_template")
    dst = tmp_path / "case.db"
    shutil.copy(template, dst)
    return Store(f"sqlite:///{dst}")


def _render(result) -> str:
    """What a person reads, in both languages (a fact must hold in either)."""
    return result.render("en") + "\n" + result.render("zh")


def _functions(role: str) -> dict:
    from tools.registry import tool_functions

    return {fn.__name__: fn for fn in tool_functions(role)}


def _customer_id(store, who: str) -> str:
    with store.read() as s:
        found = s.scalars(select(Customer.id).where(or_(Customer.id == who, Customer.email == who))).all()
    assert len(found) == 1, f"customer {who!r} is not exactly one customer of the store"
    return found[0]


def _statuses(store, order_ids) -> dict:
    with store.read() as s:
        return {oid: s.scalar(select(Order.status).where(Order.id == oid)) for oid in order_ids}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_is_true_for_the_data(case, request, tmp_path, snapshot):
    from tools.context import ShopContext
    from tools.errors import NotFoundError, PolicyError, ToolError, ToolInputError
    from tools.orders import ConfirmationRequired, execute_pending_action
    from tools.registry import ROLE_TOOLS

    expect = case["expect"]
    if case["role"] == "marketer":
        ctx = request.getfixturevalue("marketer_ctx")
        store = ctx.store
    else:
        store = _store_for(case, request, tmp_path)
        request.addfinalizer(store.dispose)
        customer_id = _customer_id(store, case["customer"])
        ctx = ShopContext(store=store, settings=None, role="customer", customer_id=customer_id)
    funcs = _functions(case["role"])
    before = snapshot(store)
    assert None not in _statuses(store, expect.get("order_status", {})).values(), "an order of the case is missing"
    if expect.get("no_writes"):
        assert _statuses(store, expect.get("order_status", {})) == expect.get("order_status", {})

    texts: list[str] = []
    last = None
    for call in expect.get("tool_calls", []):
        name, args = call["name"], dict(call["arguments"])
        assert name in ROLE_TOOLS[case["role"]], f"{name} is not a {case['role']} tool"
        if name not in funcs:
            pytest.fail(f"tool {name} is not implemented yet")
        fn = funcs[name]
        if name == "transfer_to_human" and "summary" not in args:
            args["summary"] = case["turns"][0]
        sig = inspect.signature(fn)  # the expected arguments are real parameters (a subset for index tools)
        (sig.bind_partial if name in INDEX_TOOLS else sig.bind)(ctx, **args)
        if name in INDEX_TOOLS:
            continue
        last = fn(ctx, **args)
        texts.append(_render(last))

    if isinstance(last, ConfirmationRequired) and not expect.get("no_writes", True):
        texts.append(_render(execute_pending_action(ctx)))

    for p in case.get("probe", []):
        if p["outcome"] == "no_tool":
            assert p["name"] not in ROLE_TOOLS[case["role"]]
            continue
        fn = _functions("customer")[p["name"]]
        if p["outcome"] == "ok":
            texts.append(_render(fn(ctx, **p["arguments"])))
            continue
        error = {"refused": PolicyError, "not_found": NotFoundError, "input_error": ToolInputError}[p["outcome"]]
        with pytest.raises(ToolError) as info:
            fn(ctx, **p["arguments"])
        assert isinstance(info.value, error), f"{p['name']} gave {type(info.value).__name__}: {info.value}"
        texts += [str(info.value), info.value.user_message("en"), info.value.user_message("zh")]

    assert _statuses(store, expect.get("order_status", {})) == expect.get("order_status", {})
    if expect.get("no_writes"):
        assert snapshot(store) == before
    elif expect.get("no_writes") is False:
        assert snapshot(store) != before
    joined = "\n".join(texts).lower()
    for needle in expect.get("answer_contains", []):
        assert needle.lower() in joined, f"{needle!r} is not in what the tools say"
    for needle in expect.get("answer_excludes", []):
        assert needle.lower() not in joined, f"{needle!r} leaked into what the tools say"
    if expect.get("answer_excludes") and case["role"] == "customer":
        # A correct bot may show any of the customer's own orders: an excluded string must not be in them either.
        from tools.orders import get_order_details, list_my_orders

        own = [_render(list_my_orders(ctx))]
        own += [_render(get_order_details(ctx, o.order_id)) for o in list_my_orders(ctx).orders]
        own_text = "\n".join(own).lower()
        for needle in expect["answer_excludes"]:
            assert needle.lower() not in own_text, f"{needle!r} is also in the customer's own data"
