"""Support outcome figures from the turn log: conversations per day, containment (resolved without a person),
handoff rate, reopen rate, confirmed writes by kind, tools used, what customers came for (intents), grounding guards
fired, and reply time. What `shopdesk support stats` prints and the staff's Support view charts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from store.db import Store
from store.models import Conversation, Message, Ticket
from store.tickets import REOPENED

CONFIRM_MESSAGE = "[Confirm]"  # how the turn log records the customer's Confirm button (agent.session)
DECLINE_MESSAGE = "[Cancel]"  # ... and their Cancel button
# The buttons' markers in the turn log: not words the customer wrote (journeys and sentiment leave them out)
BUTTON_MESSAGES = (CONFIRM_MESSAGE, DECLINE_MESSAGE)
# Turn-log flags (agent.graph): the model's own words were replaced by the rendered facts; the model stated facts
# without a look-up and was made to call a tool.
GUARDS = ("model_text_dropped", "forced_tool")
# What a customer came for, read from the tools the agent called for them (the model's choice, logged per turn): a
# conversation counts once for each intent it had; one without a call is "other" (greetings, thanks, refusals).
INTENT_OF_TOOL = {
    "get_order_details": "order status", "list_my_orders": "order status",
    "cancel_pending_order": "cancellation", "return_delivered_order_items": "return",
    "exchange_delivered_order_items": "exchange", "modify_pending_order_address": "address change",
    "modify_pending_order_items": "item change",
    "search_products": "product question", "get_product_details": "product question",
    "search_reviews": "product question", "recommend_products": "recommendation",
    "transfer_to_human": "asked for a person",
}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def support_stats(store: Store, since: date | None = None, until: date | None = None) -> dict[str, Any]:
    """Figures for customer conversations started from `since` to `until` (inclusive days; None: unbounded)."""
    where = [Conversation.role == "customer"]
    if since is not None:
        where.append(Conversation.started_at >= datetime.combine(since, time.min))
    if until is not None:
        where.append(Conversation.started_at < datetime.combine(until + timedelta(days=1), time.min))
    ids = select(Conversation.id).where(*where)
    with store.read() as s:
        convs = s.execute(select(Conversation.id, Conversation.started_at, Conversation.outcome).where(*where)
                          .order_by(Conversation.started_at)).all()
        ticket_rows = s.execute(select(Ticket.conversation_id, Ticket.status)
                                .where(Ticket.conversation_id.in_(ids))).all()
        rows = s.execute(select(Message.conversation_id, Message.role, Message.content, Message.tool_calls,
                                Message.meta).where(Message.conversation_id.in_(ids))
                         .order_by(Message.conversation_id, Message.seq)).all()

    with_ticket = {t.conversation_id for t in ticket_rows}
    resolved_conversations = {t.conversation_id for t in ticket_rows if t.status == "resolved"}
    tickets = Counter(t.status for t in ticket_rows)
    per_day: dict[str, Counter] = defaultdict(Counter)
    handed = 0
    for c in convs:
        day = c.started_at.date().isoformat()
        human = c.outcome == "handed_off" or c.id in with_ticket
        handed += human
        per_day[day]["conversations"] += 1
        per_day[day]["handed_off" if human else "contained"] += 1

    tools: Counter[str] = Counter()
    writes: Counter[str] = Counter()
    latencies: list[float] = []
    guards: Counter[str] = Counter({k: 0 for k in GUARDS})
    last_call: dict[str, str] = {}
    intents_of: dict[str, set[str]] = defaultdict(set)
    reopened: set[str] = set()
    for conv_id, role, content, calls, meta in rows:
        for tc in calls or []:
            tools[tc.get("name") or "?"] += 1
            last_call[conv_id] = tc.get("name") or "?"
            intents_of[conv_id].add(INTENT_OF_TOOL.get(tc.get("name") or "?", "other"))
        if role == "user" and meta and meta.get(REOPENED):
            reopened.add(conv_id)
        if role == "user" and content == CONFIRM_MESSAGE and conv_id in last_call:
            writes[last_call[conv_id]] += 1  # the proposal the Confirm button carried out
        if meta and isinstance(meta.get("latency_s"), (int, float)):
            latencies.append(float(meta["latency_s"]))
        guards.update(k for k in GUARDS if meta and meta.get(k))

    total = len(convs)
    intents = Counter(i for c in convs for i in (intents_of.get(c.id) or {"other"}))
    resolved_once = resolved_conversations | reopened  # a reopened ticket was resolved before
    p50, p95 = (np.percentile(latencies, [50, 95]).round(3).tolist() if latencies else (None, None))
    return {
        "since": since.isoformat() if since else (convs[0].started_at.date().isoformat() if convs else None),
        "until": until.isoformat() if until else (convs[-1].started_at.date().isoformat() if convs else None),
        "conversations": total,
        "contained": total - handed,
        "handed_off": handed,
        "containment": _rate(total - handed, total),
        "handoff_rate": _rate(handed, total),
        "tickets": {"open": tickets.get("open", 0), "resolved": tickets.get("resolved", 0),
                    "reopened": len(reopened)},
        "reopen_rate": _rate(len(reopened), len(resolved_once)),
        "intents": dict(intents.most_common()),
        "confirmed_writes": dict(writes.most_common()),
        "tools_used": dict(tools.most_common()),
        "reply_time_s": {"p50": p50, "p95": p95, "turns": len(latencies)},
        "guards": dict(guards),
        "per_day": [{"day": day, "conversations": c["conversations"], "contained": c["contained"],
                     "handed_off": c["handed_off"], "handoff_rate": _rate(c["handed_off"], c["conversations"])}
                    for day, c in sorted(per_day.items())],
    }
