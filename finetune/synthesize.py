"""Training examples for the agent's model: synthetic conversations played through the real agent and tools.

    shopdesk transcripts synthesize --store tau2 --n 600 --seed 0 --out .data/synth-tau2.jsonl
    shopdesk transcripts synthesize --store sample --n 200 --seed 1 --out .data/synth-sample.jsonl

Each conversation is a plan of 2-4 tasks for one customer or marketer (who, which turns, and per turn what the model
does) played through `agent.session.open_session` with a scripted model: the tools run for real on a private copy of
the store, writes are proposed by a call and confirmed or declined by the session API, and replies are rendered by
the agent's code. Every call of the model becomes one training example: exactly the messages the agent sent it (system
turn and tools, the last finished turns as question and rendered reply, this turn's calls and results as the model
reads them) and the scripted reply as the only learnable message (earlier assistant messages have weight 0):

- a tool call, as planned: the first step of a turn, or the next step of a chain (a return: get_order_details, then
  return_delivered_order_items with the item and payment ids it just read);
- an empty reply once the results answer the question (the person reads their rendering, so nothing is added);
- a short sentence that states no fact (agent.grounding.states_fact) for a greeting, off-topic or injected request.

Phrasings come from the Bitext customer-support utterances (real customer wording per intent, order numbers swapped
for real ones) and from hand-written English and Chinese templates; flows follow ABCD's guidelines (look the order up
first, confirm before a change, hand off when out of scope). Customers of the eval cases (agent/evalcases/*.jsonl)
are left out, so the eval stays unseen; finetune.mixdata also leaves out their prompts.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune.phrases import (
    CATEGORY_WORDS,
    EN,
    HANDOFF_SUMMARY,
    NEW_ADDRESSES,
    PRODUCT_QUERIES,
    REASONS,
    REASONS_ZH,
    REVIEW_TOPICS,
    REVIEW_TOPICS_ZH,
    SAY,
    TIERS_ZH,
    ZH,
    ZH_PRODUCT_QUERIES,
)
from finetune.transcripts import Transcript

if TYPE_CHECKING:
    from agent.evaluate import EvalCase

EVALCASES = Path(__file__).resolve().parent.parent / "agent" / "evalcases"

# ---------------------------------------------------------------- phrasings


def load_bitext(path: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Bitext utterances by intent: {"text", "entity_type", "start", "end"} (the entity span, if any)."""
    from shopdesk.datasets import bitext_csv

    path = path or bitext_csv()
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not path.exists():
        from shopdesk.output import UserError

        raise UserError(f"{path}: Bitext utterance file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            start = int(row["start_offset"]) if row.get("start_offset", "").strip().isdigit() else None
            end = int(row["end_offset"]) if row.get("end_offset", "").strip().isdigit() else None
            out[row["intent"]].append({"text": row["instruction"].strip(),
                                       "entity_type": row.get("entity_type") or None, "start": start, "end": end})
    return out


def with_order_id(u: dict[str, Any], shown: str) -> str | None:
    """The utterance with its order number replaced by `shown`; None if it names no order."""
    if u["entity_type"] != "order_id" or u["start"] is None:
        return None
    text = u["text"]
    return text[: u["start"]] + shown + text[u["end"]:]


def shown_id(oid: str, rng: random.Random) -> str:
    """How a customer writes the id: '#W2611340', 'W2611340' or '2611340' (the tool normalises all three)."""
    r = rng.random()
    if r < 0.6:
        return oid
    if r < 0.85:
        return oid.lstrip("#")
    return oid.lstrip("#")[1:]


# ---------------------------------------------------------------- plans

# A turn is a message the person types or a button: {"action": "confirm" | "decline" | "handoff"}.
Turn = str | dict[str, str]


@dataclass
class Task:
    """One thing the person wants: its turns and, per turn, what the model answers at each of its calls (after the
    planned steps the model ends the turn with an empty reply).
    """

    kind: str
    turns: list[Turn]
    steps: list[list[Any]]
    order: dict[str, Any] | None = None  # the order the task is about (a follow-up may refer to it)
    ends: bool = False  # a handoff: after it a person answers, not the model
    note: dict[str, Any] = field(default_factory=dict)  # what a follow-up needs (category, customer, ...)


@dataclass
class Plan:
    """One conversation: the person's turns and, per turn, the scripted model's steps."""

    kind: str
    role: str
    customer_id: str | None
    lang: str
    turns: list[Turn]
    script: list[list[Any]]
    tasks: list[str] = field(default_factory=list)  # the task of each turn

    @classmethod
    def of(cls, role: str, customer_id: str | None, lang: str, tasks: list[Task]) -> Plan:
        turns, script, kinds = [], [], []
        for task in tasks:
            turns += task.turns
            script += task.steps
            kinds += [task.kind] * len(task.turns)
        return cls("+".join(t.kind for t in tasks), role, customer_id, lang, turns, script, kinds)


@dataclass
class ShopView:
    """What the planner knows about the shop (read from the store, never shown to the model)."""

    customers: list[str]
    orders: dict[str, list[dict[str, Any]]]  # customer -> orders (id, status, items), most recent first
    payment_methods: dict[str, list[str]]
    variants: dict[str, list[tuple[str, bool]]]  # product -> [(variant id, available)]
    customer_emails: dict[str, str]
    categories: list[str]
    reviewed: list[str] = field(default_factory=list)  # names of products that have reviews


def read_shop(store, exclude: set[str]) -> ShopView:
    """The shop's customers, orders, products and reviews that synthesis draws on, leaving out `exclude`."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from store.models import Customer, Order, PaymentMethod, Product, Review, Variant

    orders: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with store.read() as s:
        for o in s.scalars(select(Order).options(selectinload(Order.items), selectinload(Order.payments))):
            orders[o.customer_id].append({
                "id": o.id, "status": o.status, "created_at": o.created_at,
                "items": [{"item_id": it.variant_id, "product_id": it.product_id, "name": it.name} for it in o.items],
                "payments": [p.payment_method_id for p in o.payments if p.kind == "payment" and p.payment_method_id],
            })
        pms: dict[str, list[str]] = defaultdict(list)
        for pm in s.scalars(select(PaymentMethod)):
            pms[pm.customer_id].append(pm.id)
        variants: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for v in s.scalars(select(Variant)):
            variants[v.product_id].append((v.id, bool(v.available)))
        emails = {c.id: c.email for c in s.scalars(select(Customer)) if c.email}
        cats = sorted({c for c in s.scalars(select(Product.category)) if c})
        reviewed = sorted(set(s.scalars(select(Product.name).where(Product.id.in_(select(Review.product_id))))))
    for found in orders.values():
        found.sort(key=lambda o: (o["created_at"], o["id"]), reverse=True)
    emails_back = {e: c for c, e in emails.items()}
    excluded = {emails_back.get(x, x) for x in exclude}
    customers = sorted(c for c in orders if c not in excluded)
    return ShopView(customers, dict(orders), dict(pms), dict(variants), emails, cats, reviewed)


def eval_cases(folder: Path = EVALCASES) -> list[EvalCase]:
    """Every eval case (single-turn and multi-turn) in the JSONL files of agent/evalcases."""
    from agent.evaluate import load_cases

    return load_cases(*sorted(folder.glob("*.jsonl")))


def case_messages(case: EvalCase) -> list[str]:
    """What the person types in a case: its message turns and the messages of its action turns."""
    texts = [turn if isinstance(turn, str) else turn.message for turn in case.turns]
    return [text for text in texts if text and text.strip()]


_NAMED_CUSTOMER = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\b[a-z][a-z0-9_]*\d{3,}\b")


def eval_customers(folder: Path = EVALCASES) -> set[str]:
    """Customers that the eval cases talk as or about (ids or emails), kept out of the synthetic data."""
    found: set[str] = set()
    for case in eval_cases(folder):
        if case.customer:
            found.add(case.customer)
        for text in case_messages(case):
            found.update(_NAMED_CUSTOMER.findall(text))
    return found


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    """A scripted model step that calls one tool with these arguments."""
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


class SessionDependentStep:
    """A script step that depends on what the tools returned in this conversation (the session's results)."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn


def _latest_order_details(session) -> dict[str, Any]:
    result = session.all_results[-1][1]
    orders = getattr(result, "orders", None) or []
    return tool("get_order_details", order_id=orders[0].order_id) if orders else EMPTY


latest_order_details = SessionDependentStep(_latest_order_details)
EMPTY = ""  # the reply after the last needed result: the rendering answers, the model adds nothing

CUSTOMER_FLOWS = {  # flow -> weight of a conversation's first task (later tasks: the same, see FOLLOW_FLOWS)
    "status": 4, "status_confusable": 3, "listing": 2, "where_no_id": 1.2, "cancel": 2.5, "cancel_declined": 1.2,
    "cancel_refused": 1.2, "cancel_no_id": 0.8, "cancel_no_reason": 1.2, "return_items": 3, "exchange_items": 1.8,
    "address": 1.2,
    "other_customer": 1, "handoff": 2, "refusal": 1.2, "greeting": 0.8, "products": 1.5, "recommend": 0.7,
    "product_details": 0.8, "reviews": 0.6,
}
FOLLOW_ONLY = {"thanks": 1.0}  # tasks that only come after another one
FIRST_ONLY = {"greeting"}
TASKS_PER_CONVERSATION = {2: 0.45, 3: 0.35, 4: 0.2}
LINKED_SHARE = 0.45  # chance that a task refers to the one before it ("and its tracking number?", "cancel it")


class Planner:
    def __init__(self, view: ShopView, bitext: dict[str, list[dict[str, Any]]], rng: random.Random):
        self.view, self.bitext, self.rng = view, bitext, rng
        self.taken: set[str] = set()  # orders a cancellation of this conversation already acted on

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    @staticmethod
    def ph(lang: str) -> dict[str, list[str]]:
        return ZH if lang == "zh" else EN

    def bitext_with_id(self, intents: list[str], oid: str) -> str | None:
        pool = [u for i in intents for u in self.bitext.get(i, []) if u["entity_type"] == "order_id"]
        if not pool:
            return None
        return with_order_id(self.pick(pool), shown_id(oid, self.rng))

    def bitext_plain(self, intents: list[str]) -> str | None:
        pool = [u for i in intents for u in self.bitext.get(i, []) if not u["entity_type"]]
        return self.pick(pool)["text"] if pool else None

    def customer_with(self, pred: Callable[[dict], bool], customer: str | None = None) -> tuple[str, dict] | None:
        """A customer (this one, if given) and one of their orders that satisfies `pred`."""
        for _ in range(1 if customer else 50):
            c = customer or self.pick(self.view.customers)
            found = [o for o in self.view.orders.get(c, []) if pred(o)]
            if found:
                return c, self.pick(found)
        return None

    def pending_to_cancel(self, customer: str | None = None) -> tuple[str, dict] | None:
        """A customer and a pending order of theirs that no cancellation of this conversation has used yet (the
        planner's view of the shop does not change as the conversation plays: the order stays "pending" in it).
        """
        got = self.customer_with(lambda o: o["status"] == "pending" and o["id"] not in self.taken, customer)
        if got:
            self.taken.add(got[1]["id"])
        return got

    def someone(self, customer: str | None) -> str:
        return customer or self.pick(self.view.customers)

    def confirm_turn(self, lang: str) -> Turn:
        """The Confirm button, or now and then a typed yes (both are handled by code, not by the model)."""
        return {"action": "confirm"} if self.rng.random() < 0.75 else self.pick(self.ph(lang)["yes"])

    def decline_turn(self, lang: str) -> Turn:
        return {"action": "decline"} if self.rng.random() < 0.7 else self.pick(self.ph(lang)["no"])

    def reason(self, lang: str) -> tuple[str, str]:
        reason = self.pick(list(REASONS))
        return reason, self.pick((REASONS_ZH if lang == "zh" else REASONS)[reason])

    def cancel_request(self, oid: str, lang: str) -> tuple[str, str]:
        """(reason, what the customer writes) for cancelling order `oid`."""
        reason, reason_words = self.reason(lang)
        if lang == "zh":
            return reason, self.pick(ZH["cancel"]).format(oid=shown_id(oid, self.rng), reason_zh=reason_words)
        base = self.bitext_with_id(["cancel_order"], oid) or f"Cancel order {oid}"
        return reason, f"{base.rstrip('?.! ')}. {reason_words.capitalize()}."

    # -- customer tasks (each takes the conversation's customer, if one is chosen already) --------------------

    def status(self, lang: str, c: str | None = None) -> Task | None:
        got = self.customer_with(lambda o: True, c)
        if not got:
            return None
        c, o = got
        shown = shown_id(o["id"], self.rng)
        if lang == "zh":
            text = self.pick(ZH["status"]).format(oid=shown)
        elif self.rng.random() < 0.5:
            text = self.bitext_with_id(["track_order", "check_invoice"], o["id"]) or f"Where is my order {shown}?"
        else:
            text = self.pick(EN["status"]).format(oid=shown)
        return Task("status", [text], [[tool("get_order_details", order_id=o["id"])]], order=o, note={"customer": c})

    def status_confusable(self, lang: str, c: str | None = None) -> Task | None:
        """A status question that names a cancellation or a return: the answer is a look-up, never a write."""
        got = self.customer_with(lambda o: True, c)
        if not got:
            return None
        c, o = got
        text = self.pick(self.ph(lang)["status_confusable"]).format(oid=shown_id(o["id"], self.rng))
        return Task("status-confusable", [text], [[tool("get_order_details", order_id=o["id"])]], order=o,
                    note={"customer": c})

    def listing(self, lang: str, c: str | None = None) -> Task | None:
        c = self.someone(c)
        text = self.pick(self.ph(lang)["list"])
        return Task("list", [text], [[tool("list_my_orders")]], note={"customer": c})

    def where_no_id(self, lang: str, c: str | None = None) -> Task | None:
        c = self.someone(c)
        if not self.view.orders.get(c):
            return None
        text = self.pick(self.ph(lang)["where_no_id"])
        return Task("status-lookup", [text], [[tool("list_my_orders"), latest_order_details]], note={"customer": c})

    def cancel(self, lang: str, c: str | None = None, outcome: str | None = None) -> Task | None:
        """Cancel a pending order; then Confirm, Cancel, or (left open) a new question that drops the proposal."""
        got = self.pending_to_cancel(c)
        if not got:
            return None
        c, o = got
        reason, text = self.cancel_request(o["id"], lang)
        outcome = outcome or self.rng.choices(["confirm", "decline", "open"], [0.7, 0.15, 0.15])[0]
        return self._proposal("cancel", text, [tool("cancel_pending_order", order_id=o["id"], reason=reason)],
                              outcome, lang, o, c)

    def cancel_declined(self, lang: str, c: str | None = None) -> Task | None:
        return self.cancel(lang, c, outcome="decline")

    def _proposal(self, kind: str, text: str, steps: list[Any], outcome: str, lang: str, o: dict, c: str) -> Task:
        if outcome == "confirm":
            return Task(kind, [text, self.confirm_turn(lang)], [steps, []], order=o, note={"customer": c})
        if outcome == "decline":
            return Task(kind + "-declined", [text, self.decline_turn(lang)], [steps, []], order=o, note={"customer": c})
        return Task(kind + "-left-open", [text], [steps], order=o, note={"customer": c})

    def cancel_refused(self, lang: str, c: str | None = None) -> Task | None:
        """A cancellation the tool refuses (not pending): the model reads the error and ends the turn."""
        got = self.customer_with(lambda o: o["status"] in ("delivered", "processed", "cancelled"), c)
        if not got:
            return None
        c, o = got
        reason, text = self.cancel_request(o["id"], lang)
        return Task("cancel-refused", [text], [[tool("cancel_pending_order", order_id=o["id"], reason=reason)]],
                    order=o, note={"customer": c})

    def cancel_no_id(self, lang: str, c: str | None = None) -> Task | None:
        got = self.pending_to_cancel(c)
        if not got:
            return None
        c, o = got
        reason, reason_words = self.reason(lang)
        if lang == "zh":
            first = self.pick(ZH["cancel_no_id"])
            second = f"订单 {shown_id(o['id'], self.rng)},{reason_words}。"
        else:
            first = self.bitext_plain(["cancel_order"]) if self.rng.random() < 0.5 else None
            first = first or self.pick(EN["cancel_no_id"])
            second = f"{shown_id(o['id'], self.rng)}, {reason_words}."
        return Task("cancel-no-id", [first, second, self.confirm_turn(lang)],
                    [[tool("list_my_orders"), SAY["which"][lang]],
                     [tool("cancel_pending_order", order_id=o["id"], reason=reason)], []],
                    order=o, note={"customer": c})

    def cancel_no_reason(self, lang: str, c: str | None = None) -> Task | None:
        """A cancellation without a reason: the call leaves the reason out and the tool asks the policy's question;
        the customer's answer gives the reason, and the proposal follows.
        """
        got = self.pending_to_cancel(c)
        if not got:
            return None
        c, o = got
        ph = self.ph(lang)
        reason, reason_words = self.reason(lang)
        first = self.pick(ph["cancel_no_reason"]).format(oid=shown_id(o["id"], self.rng))
        second = self.pick(ph["reason_only"]).format(reason=reason_words, reason_cap=reason_words.capitalize())
        return Task("cancel-no-reason", [first, second, self.confirm_turn(lang)],
                    [[tool("cancel_pending_order", order_id=o["id"])],
                     [tool("cancel_pending_order", order_id=o["id"], reason=reason)], []],
                    order=o, note={"customer": c})

    def return_items(self, lang: str, c: str | None = None) -> Task | None:
        """A return carried through in one turn: look the order up, then propose the return with the item and
        payment ids just read (also when the person typed them: the look-up makes them valid arguments).
        """
        got = self.customer_with(lambda o: o["status"] == "delivered" and o["items"] and o["payments"], c)
        if not got:
            return None
        c, o = got
        ph = self.ph(lang)
        shown = shown_id(o["id"], self.rng)
        item = self.pick(o["items"])
        pm = o["payments"][0]
        gift = [p for p in self.view.payment_methods.get(c, []) if p.startswith("gift_card")]
        style = self.rng.choices(["name", "ids", "all"], [0.6, 0.25, 0.15])[0]
        items = [item["item_id"]]
        if style == "ids":
            if gift and self.rng.random() < 0.3:
                pm = gift[0]
            text = self.pick(ph["return_ids"]).format(oid=shown, iid=item["item_id"], pm=pm)
        elif style == "all":
            items = list(dict.fromkeys(it["item_id"] for it in o["items"]))
            text = self.pick(ph["return_all"]).format(oid=shown)
        else:
            text = self.pick(ph["return"]).format(oid=shown, item=item["name"])
        outcome = self.rng.choices(["confirm", "decline", "open"], [0.75, 0.15, 0.1])[0]
        return self._proposal("return", text, [tool("get_order_details", order_id=o["id"]),
                                               tool("return_delivered_order_items", order_id=o["id"], item_ids=items,
                                                    payment_method_id=pm)], outcome, lang, o, c)

    def exchange_items(self, lang: str, c: str | None = None) -> Task | None:
        def others(it):
            return [v for v, a in self.view.variants.get(it["product_id"], []) if a and v != it["item_id"]]

        got = self.customer_with(lambda o: o["status"] in ("delivered", "pending") and o["payments"]
                                 and any(others(it) for it in o["items"]), c)
        if not got:
            return None
        c, o = got
        it = self.pick([it for it in o["items"] if others(it)])
        new = self.pick(others(it))
        delivered = o["status"] == "delivered"
        name = "exchange_delivered_order_items" if delivered else "modify_pending_order_items"
        verb = self.pick(["exchange", "swap"]) if delivered else self.pick(["change", "switch"])
        text = self.pick(self.ph(lang)["exchange"]).format(oid=shown_id(o["id"], self.rng), item=it["name"], new=new,
                                                           verb=verb)
        outcome = self.rng.choices(["confirm", "decline"], [0.85, 0.15])[0]
        return self._proposal("exchange" if delivered else "modify-items", text,
                              [tool("get_order_details", order_id=o["id"]),
                               tool(name, order_id=o["id"], item_ids=[it["item_id"]], new_item_ids=[new],
                                    payment_method_id=o["payments"][0])], outcome, lang, o, c)

    def address(self, lang: str, c: str | None = None) -> Task | None:
        got = self.customer_with(lambda o: o["status"] == "pending", c)
        if not got:
            return None
        c, o = got
        a = self.pick(NEW_ADDRESSES)
        line = ", ".join(
            x for x in (a["address1"], a["address2"], a["city"], f"{a['state']} {a['zip']}", a["country"]) if x
        )
        text = self.pick(self.ph(lang)["address"]).format(oid=shown_id(o["id"], self.rng), addr=line)
        outcome = self.rng.choices(["confirm", "decline"], [0.85, 0.15])[0]
        return self._proposal("address", text, [tool("modify_pending_order_address", order_id=o["id"], **a)],
                              outcome, lang, o, c)

    def other_customer(self, lang: str, c: str | None = None) -> Task | None:
        """Someone else's order: the tool answers that there is no such order on this account."""
        c = self.someone(c)
        others = [x for x in self.view.customers if x != c]
        o = self.pick(self.view.orders[self.pick(others)])
        if lang == "zh":
            text = self.pick(ZH["status"] + ZH["status_confusable"]).format(oid=o["id"])
        else:
            text = self.bitext_with_id(["track_order"], o["id"]) or f"What's the status of {o['id']}?"
        return Task("other-customer", [text], [[tool("get_order_details", order_id=o["id"])]], note={"customer": c})

    def handoff(self, lang: str, c: str | None = None) -> Task | None:
        c = self.someone(c)
        if lang == "zh" or self.rng.random() < 0.6:
            text = self.pick(self.ph(lang)["human"])
        else:
            text = self.bitext_plain(["contact_human_agent", "contact_customer_service"]) or "I want a human."
        return Task("handoff", [text], [[tool("transfer_to_human", summary=HANDOFF_SUMMARY[lang])]], ends=True,
                    note={"customer": c})

    def refusal(self, lang: str, c: str | None = None) -> Task | None:
        kind = self.pick(["offtopic", "inject"])
        return Task("refusal-" + kind, [self.pick(self.ph(lang)[kind])], [[SAY[kind][lang]]],
                    note={"customer": self.someone(c)})

    def greeting(self, lang: str, c: str | None = None) -> Task | None:
        return Task("greeting", [self.pick(self.ph(lang)["greeting"])], [[SAY["greeting"][lang]]],
                    note={"customer": self.someone(c)})

    def thanks(self, lang: str, c: str | None = None) -> Task | None:
        return Task("thanks", [self.pick(self.ph(lang)["thanks"])], [[SAY["thanks"][lang]]],
                    note={"customer": self.someone(c)})

    def products(self, lang: str, c: str | None = None) -> Task | None:
        q = self.pick(ZH_PRODUCT_QUERIES if lang == "zh" else PRODUCT_QUERIES)
        text = self.pick(self.ph(lang)["products"]).format(q=q)
        return Task("search", [text], [[tool("search_products", query=q)]], note={"customer": self.someone(c)})

    def product_details(self, lang: str, c: str | None = None) -> Task | None:
        pid = self.pick(sorted(self.view.variants))
        text = self.pick(self.ph(lang)["product_details"]).format(pid=pid)
        return Task("product", [text], [[tool("get_product_details", product_id=pid)]],
                    note={"customer": self.someone(c)})

    def reviews(self, lang: str, c: str | None = None) -> Task | None:
        if not self.view.reviewed:
            return None  # a shop without reviews (tau2)
        name = self.pick(self.view.reviewed)
        topic = self.pick(REVIEW_TOPICS_ZH if lang == "zh" else REVIEW_TOPICS)
        text = self.pick(self.ph(lang)["customer_reviews"]).format(name=name, topic=topic)
        return Task("reviews", [text], [[tool("search_reviews", query=topic, product=name)]],
                    note={"customer": self.someone(c)})

    def recommend(self, lang: str, c: str | None = None) -> Task | None:
        text = self.pick(self.ph(lang)["recommend"])
        return Task("recommend", [text], [[tool("recommend_products")]], note={"customer": self.someone(c)})

    def linked(self, prev: Task, lang: str, c: str) -> Task | None:
        """A task that refers to the one before it without naming the order again."""
        o = prev.order
        if o is None or prev.kind.endswith("-left-open"):
            return None
        ph = self.ph(lang)
        if o["status"] == "pending" and prev.kind in ("status", "status-confusable") and self.rng.random() < 0.5:
            reason, reason_words = self.reason(lang)
            text = self.pick(ph["cancel_it"]).format(reason=reason_words, reason_cap=reason_words.capitalize(),
                                                     reason_zh=reason_words)
            return self._proposal("cancel-it", text, [tool("cancel_pending_order", order_id=o["id"], reason=reason)],
                                  self.rng.choices(["confirm", "decline"], [0.8, 0.2])[0], lang, o, c)
        text = self.pick(ph[self.pick(["follow_tracking", "follow_items"])])
        return Task("follow-up", [text], [[tool("get_order_details", order_id=o["id"])]], order=o,
                    note={"customer": c})

    # -- marketer tasks --------------------------------------------------------------------------------------

    def marketer_task(self, lang: str, kind: str | None = None) -> Task | None:
        from tools.analytics.rfm import SEGMENTS

        ph = self.ph(lang)

        def ask(name: str, text: str, tool_name: str, **arguments: Any) -> Task:
            return Task(name, [text], [[tool(tool_name, **arguments)]], note=dict(arguments))

        kinds = ["segments", "lookup_customer", "lookup_segment", "churn", "churn_tier", "churn_segment", "profile",
                 "offer", "offer_customers", "products", "refuse", "journey", "funnel"]
        if self.view.reviewed:
            kinds += ["insights", "insights", "reviews"]
        kind = kind or self.pick(kinds)
        cust = self.pick(self.view.customers)
        shown = self.view.customer_emails.get(cust, cust) if self.rng.random() < 0.3 else cust
        seg = self.pick(list(SEGMENTS))
        if kind == "segments":
            return ask("m-segments", self.pick(ph["segments"]), "summarize_segments")
        if kind == "churn_tier":
            tier = self.pick(["high", "high", "medium", "low"])
            text = self.pick(ph["churn_tier"]).format(tier=TIERS_ZH[tier] if lang == "zh" else tier)
            return ask("m-churn-tier", text, "score_churn", tier=tier)
        if kind == "churn_segment":
            return ask("m-churn-segment", self.pick(ph["churn_segment"]).format(seg=seg), "score_churn", segment=seg)
        if kind == "offer_customers":
            c2 = self.pick([c for c in self.view.customers if c != cust] or [cust])
            text = self.pick(ph["offer_customers"])
            targets = [cust, c2] if "{c2}" in text else [cust]
            return ask("m-offer-customers", text.format(c1=cust, c2=c2), "draft_retention_offer", customers=targets)
        if kind == "products":
            q = self.pick(ZH_PRODUCT_QUERIES if lang == "zh" else PRODUCT_QUERIES)
            return ask("m-products", self.pick(ph["m_products"]).format(q=q), "search_products", query=q)
        if kind == "lookup_customer":
            return ask("m-lookup-customer", self.pick(ph["lookup_customer"]).format(cust=shown), "lookup_segment",
                       customer=shown)
        if kind == "lookup_segment":
            return ask("m-lookup-segment", self.pick(ph["lookup_segment"]).format(seg=seg), "lookup_segment",
                       segment=seg)
        if kind == "churn":
            n = self.pick([5, 10, 15, 20])
            return ask("m-churn", self.pick(ph["churn"]).format(n=n), "score_churn", top_n=n)
        if kind == "profile":
            return ask("m-profile", self.pick(ph["profile"]).format(cust=shown), "get_customer_profile", customer=shown)
        if kind == "journey":
            return ask("m-journey", self.pick(ph["journey"]).format(cust=shown), "get_customer_journey", customer=shown)
        if kind == "funnel":
            return self.funnel_task(lang)
        if kind == "offer":
            return ask("m-offer", self.pick(ph["offer"]).format(seg=seg), "draft_retention_offer", segment=seg)
        if kind == "reviews":
            topic = self.pick(REVIEW_TOPICS_ZH if lang == "zh" else REVIEW_TOPICS)
            return ask("m-reviews", self.pick(ph["reviews"]).format(topic=topic), "search_reviews", query=topic)
        if kind == "refuse":  # no tool of the console does this: a fact-free sentence, no call
            c = self.pick(self.view.customers)
            o = self.pick(self.view.orders[c])
            pm = self.pick(self.view.payment_methods.get(c) or ["credit_card_1234567"])
            return Task("m-refuse", [self.pick(ph["m_refuse"]).format(oid=o["id"], pm=pm)], [[SAY["m_refuse"][lang]]])
        if kind == "insights":
            cat = self.pick([c for c in self.view.categories if c in CATEGORY_WORDS] or self.view.categories)
            return ask("m-insights", self.pick(ph["insights"]).format(word=self.category_word(cat, lang)),
                       "review_insights", category=cat)
        return None

    def funnel_task(self, lang: str) -> Task:
        """The conversion funnel: the whole shop, or one category, segment or value tier."""
        from tools.analytics.rfm import SEGMENTS

        ph = self.ph(lang)
        by = self.pick(["all", "all", "category", "segment", "tier"])
        if by == "category" and any(c in CATEGORY_WORDS for c in self.view.categories):
            cat = self.pick([c for c in self.view.categories if c in CATEGORY_WORDS])
            text = self.pick(ph["funnel_category"]).format(word=self.category_word(cat, lang))
            return Task("m-funnel", [text], [[tool("journey_funnel", category=cat)]], note={"category": cat})
        if by == "segment":
            seg = self.pick(list(SEGMENTS))
            return Task("m-funnel", [self.pick(ph["funnel_segment"]).format(seg=seg)],
                        [[tool("journey_funnel", segment=seg)]], note={"segment": seg})
        if by == "tier":
            tier = self.pick(["high", "medium", "low"])
            text = self.pick(ph["funnel_tier"]).format(tier=TIERS_ZH[tier] if lang == "zh" else tier)
            return Task("m-funnel", [text], [[tool("journey_funnel", tier=tier)]], note={"tier": tier})
        return Task("m-funnel", [self.pick(ph["funnel"])], [[tool("journey_funnel")]], note={})

    def category_word(self, category: str, lang: str) -> str:
        """How a person names the category: a plain word most of the time, the catalog's name now and then."""
        en, zh = CATEGORY_WORDS.get(category, ([category.lower()], [category]))
        if lang == "en" and self.rng.random() < 0.2:
            return category
        return self.pick(zh if lang == "zh" else en)

    def marketer_linked(self, prev: Task, lang: str) -> Task | None:
        ph = self.ph(lang)
        if prev.kind in ("m-profile", "m-profile-more") and prev.note.get("customer"):
            cust = prev.note["customer"]
            return Task("m-journey", [self.pick(ph["journey_more"])],
                        [[tool("get_customer_journey", customer=cust)]], note={"customer": cust})
        if prev.kind in ("m-churn", "m-churn-tier", "m-churn-segment", "m-lookup-segment", "m-segments"):
            cust = self.pick(self.view.customers)
            if prev.kind == "m-segments":
                return self.marketer_task(lang, "lookup_segment")
            if self.rng.random() < 0.5:
                return Task("m-profile-more", [self.pick(ph["profile_more"]).format(cust=cust)],
                            [[tool("get_customer_profile", customer=cust)]], note={"customer": cust})
            return self.marketer_task(lang, "offer_customers")
        if prev.kind == "m-insights":
            cats = [c for c in self.view.categories if c in CATEGORY_WORDS and c != prev.note.get("category")]
            if not cats:
                return None
            cat = self.pick(cats)
            return Task("m-insights-more", [self.pick(ph["insights_more"]).format(word=self.category_word(cat, lang))],
                        [[tool("review_insights", category=cat)]], note={"category": cat})
        return None

    # -- conversations ---------------------------------------------------------------------------------------

    def conversation(self, lang: str, flows: list[str], weights: list[float]) -> Plan | None:
        """A customer conversation of 2-4 tasks (fewer when a handoff ends it, or the customer runs out of orders
        that fit).
        """
        n = self.rng.choices(list(TASKS_PER_CONVERSATION), list(TASKS_PER_CONVERSATION.values()))[0]
        self.taken = set()
        first = getattr(self, self.rng.choices(flows, weights)[0])(lang)
        if first is None:
            return None
        c = first.note["customer"]
        tasks = [first]
        later = [(f, w) for f, w in zip(flows, weights, strict=True) if f not in FIRST_ONLY] + list(FOLLOW_ONLY.items())
        while len(tasks) < n and not tasks[-1].ends:
            nxt = self.linked(tasks[-1], lang, c) if self.rng.random() < LINKED_SHARE else None
            for _ in range(6):
                if nxt is not None:
                    break
                flow = self.rng.choices([f for f, _ in later], [w for _, w in later])[0]
                nxt = getattr(self, flow)(lang, c)
            if nxt is None:
                break
            tasks.append(nxt)
        return Plan.of("customer", c, lang, tasks)

    def marketer_conversation(self, lang: str) -> Plan | None:
        n = self.rng.choices(list(TASKS_PER_CONVERSATION), list(TASKS_PER_CONVERSATION.values()))[0]
        first = self.marketer_task(lang) if self.rng.random() > 0.08 else self.greeting(lang)
        if first is None:
            return None
        tasks = [first]
        while len(tasks) < n:
            nxt = self.marketer_linked(tasks[-1], lang) if self.rng.random() < LINKED_SHARE else None
            if nxt is None:
                nxt = self.thanks(lang) if self.rng.random() < 0.08 else self.marketer_task(lang)
            if nxt is None:
                break
            tasks.append(nxt)
        for t in tasks:
            t.note.pop("customer", None)
        return Plan.of("marketer", None, lang, tasks)

    def single(self, flow: str, lang: str) -> Plan | None:
        """A conversation of one task (tests, and the smallest unit to look at)."""
        if flow == "marketer":
            task = self.marketer_task(lang)
            return None if task is None else Plan.of("marketer", None, lang, [task])
        task = getattr(self, flow)(lang)
        return None if task is None else Plan.of("customer", task.note["customer"], lang, [task])


# ---------------------------------------------------------------- playing plans


class PlanMismatch(RuntimeError):
    """The agent did not take the planned path (a step left over, a dropped sentence, a rejected call)."""


def _message_dict(m, weight: int | None = None) -> dict[str, Any]:
    """A LangChain message as a transcript message (OpenAI style, tool-call arguments as dicts)."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    content = m.content if isinstance(m.content, str) else json.dumps(m.content, ensure_ascii=False)
    if isinstance(m, SystemMessage):
        return {"role": "system", "content": content}
    if isinstance(m, HumanMessage):
        return {"role": "user", "content": content}
    if isinstance(m, ToolMessage):
        out = {"role": "tool", "content": content, "tool_call_id": m.tool_call_id}
        return dict(out, name=m.name) if m.name else out
    if not isinstance(m, AIMessage):
        raise TypeError(f"unexpected message type {type(m).__name__}")
    out = {"role": "assistant", "content": content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": tc["id"], "type": "function",
                              "function": {"name": tc["name"], "arguments": dict(tc["args"])}} for tc in m.tool_calls]
    if weight is not None:
        out["weight"] = weight
    return out


def target_kind(message: dict[str, Any]) -> str:
    """What a learnable reply is: a call (by tool name), an empty reply, or text."""
    if message.get("tool_calls"):
        return "call:" + message["tool_calls"][0]["function"]["name"]
    return "empty" if not message.get("content", "").strip() else "text"


def play(plan: Plan, settings, store) -> list[Transcript]:
    """Run the plan through the agent with the real tools; one training example per call of the model."""
    from agent.session import open_session
    from agent.testing import ScriptedChatModel, to_message

    live_session: dict[str, Any] = {}
    queue: list[Any] = []
    outputs: list[Any] = []

    def next_step(messages):
        step = queue.pop(0) if queue else EMPTY
        if isinstance(step, SessionDependentStep):
            step = step.fn(live_session["session"])
        msg = to_message(step, messages)
        outputs.append(msg)
        return msg

    model = ScriptedChatModel(script=[], fallback=next_step)
    session = open_session(settings, plan.role, plan.customer_id, model=model, store=store, channel="synthetic",
                           log_turns=False)
    # the model is asked after every result, as the shipped adapter's data were made: it still learns what follows a
    # look-up (an empty reply; a proposal when a change was asked), which the agent asks it after a failed call or
    # a requested change, even though a look-up that answers now ends the turn without that call
    session.one_call_after_read = False
    live_session["session"] = session
    turn_of_call: list[int] = []
    for i, (turn, steps) in enumerate(zip(plan.turns, plan.script, strict=True)):
        queue[:] = list(steps)
        before = len(outputs)
        if isinstance(turn, str):
            events = session.respond(turn)
        elif turn["action"] == "confirm":
            events = session.confirm()
        elif turn["action"] == "decline":
            events = session.decline()
        else:
            events = session.hand_off(turn.get("message") or "Please transfer me to a human agent.")
        for _event in events:
            pass
        turn_of_call += [i] * (len(outputs) - before)
        if queue:
            raise PlanMismatch(f"turn {i} ({plan.tasks[i]}): {len(queue)} planned step(s) were not used")
        if not steps and len(outputs) > before:  # a typed yes/no that code was to handle reached the model
            raise PlanMismatch(f"turn {i} ({plan.tasks[i]}): the model was asked, but no step was planned")
    if session.stats["model_text_dropped"] or session.stats["invalid_calls"]:
        raise PlanMismatch(f"model text dropped {session.stats['model_text_dropped']} time(s), "
                           f"invalid calls {session.stats['invalid_calls']}")
    examples = []
    for k, (request, out) in enumerate(zip(model.requests, outputs, strict=True)):
        messages = [_message_dict(m, weight=0) for m in request["messages"]]
        messages.append(_message_dict(out))
        i = turn_of_call[k]
        meta = {"conversation_id": session.conversation_id, "customer_id": plan.customer_id, "role": plan.role,
                "kind": plan.tasks[i], "conversation_kind": plan.kind, "lang": plan.lang, "synthetic": True,
                "turn": i, "call": k, "calls": len(outputs), "target": target_kind(messages[-1])}
        examples.append(Transcript(messages=messages, tools=request.get("tools"), meta=meta))
    return examples


def pick_flows(flows: list[str] | None, marketer_share: float | None, kind: str) -> tuple[list[str], float]:
    """The customer flows to draw from and the marketer share, for ``--flows`` (None: every flow)."""
    if not flows:
        return list(CUSTOMER_FLOWS), (0.15 if kind == "sample" else 0.0) if marketer_share is None else marketer_share
    unknown = [f for f in flows if f != "marketer" and f not in CUSTOMER_FLOWS]
    if unknown:
        raise ValueError(f"unknown flow(s) {', '.join(unknown)}; known: {', '.join([*CUSTOMER_FLOWS, 'marketer'])}")
    customer = [f for f in dict.fromkeys(flows) if f != "marketer"]
    if "marketer" not in flows:
        return customer, 0.0
    if not customer:
        return customer, 1.0
    return customer, 0.15 if marketer_share is None else marketer_share


def synthesize(kind: str, n: int, seed: int, settings, *, marketer_share: float | None = None, zh_share: float = 0.25,
               flows: list[str] | None = None, exclude: set[str] | frozenset[str] = frozenset(), progress: bool = True,
               workdir: Path | None = None) -> tuple[list[Transcript], dict[str, Any]]:
    """`n` conversations played on a private copy of the `kind` shop, as training examples (one per model call).
    ``flows`` restricts the customer conversations' first tasks to these flows (names of CUSTOMER_FLOWS and
    "marketer"); ``exclude`` names more customers to leave out (a dev split's), besides the eval cases' ones.
    """
    from tqdm import tqdm

    from agent.evaluate import StoreTemplates

    rng = random.Random(seed)
    bitext = load_bitext()
    flows, marketer_share = pick_flows(flows, marketer_share, kind)
    tmp = tempfile.TemporaryDirectory(prefix="shopdesk-synth-") if workdir is None else None
    work = Path(tmp.name) if tmp else workdir
    out: list[Transcript] = []
    report: dict[str, Any] = {"store": kind, "seed": seed, "requested": n, "conversations": 0, "failed": Counter(),
                              "tasks": Counter(), "examples_by_task": Counter(), "targets": Counter(),
                              "languages": Counter(), "tasks_per_conversation": Counter()}
    try:
        templates = StoreTemplates(work, settings, progress=progress)
        with templates.fresh(kind, f"synthesis-{seed}") as (store, _):
            view = read_shop(store, eval_customers() | set(exclude))
        if not view.customers:
            raise RuntimeError(f"the {kind} store has no customers with orders")
        planner = Planner(view, bitext, rng)
        weights = [CUSTOMER_FLOWS[f] for f in flows]
        bar = tqdm(total=n, desc="synthesize", file=sys.stderr, disable=not progress)
        attempts = 0
        while report["conversations"] < n and attempts < n * 3:
            attempts += 1
            lang = "zh" if rng.random() < zh_share else "en"
            marketer = not flows or rng.random() < marketer_share
            plan = planner.marketer_conversation(lang) if marketer else planner.conversation(lang, flows, weights)
            if plan is None:
                report["failed"]["marketer" if marketer else "customer: no fitting customer"] += 1
                continue
            try:  # each conversation on its own copy of the shop: the planner's view of it stays true
                with templates.fresh(kind, f"synthesis-{seed}-{attempts}") as (store, copy_settings):
                    examples = play(plan, copy_settings, store)
            except Exception as exc:  # noqa: BLE001 - a plan the data cannot support is skipped and counted
                report["failed"][f"{plan.kind}: {type(exc).__name__}: {str(exc)[:80]}"] += 1
                continue
            out += examples
            report["conversations"] += 1
            report["languages"][plan.lang] += 1
            report["tasks_per_conversation"][plan.kind.count("+") + 1] += 1
            report["tasks"].update(plan.kind.split("+"))
            for e in examples:
                report["examples_by_task"][f"{e.meta['kind']} / {e.meta['lang']}"] += 1
                report["targets"][e.meta["target"]] += 1
            bar.update(1)
        bar.close()
    finally:
        if tmp:
            tmp.cleanup()
    report["examples"] = len(out)
    for key in ("failed", "tasks", "examples_by_task", "targets", "languages", "tasks_per_conversation"):
        report[key] = dict(sorted(report[key].items(), key=lambda kv: str(kv[0])))
    return out, report
