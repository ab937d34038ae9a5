"""The Gradio app: a support chat for customers and a console for marketers, both talking to the agent's ChatSession.

    shopdesk ui                      # http://127.0.0.1:7860: this app and the HTTP API (ui/server.py)
    SHOPDESK_DEMO=1 python -m ui.app # the app alone, with the demo's customer picker

Outside demo mode a customer signs in with the token the shop signed (`/?token=...` or a cookie), never by picking.

Everything a browser session owns (its ChatSession, identity, messages, CSV folder) lives in gr.State, so
concurrent visitors never share a conversation. The app only sees agent/api.py (AppServices.open_chat alone opens
sessions, through agent.session and agent.backends); analytics panels call the marketer's tools directly through
ui/service.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import pandas as pd

from agent.api import ChatSession
from shopdesk.auth import STAFF_SESSION_S, TokenError
from shopdesk.output import UserError
from shopdesk.settings import Settings, get_settings
from store import tickets as ticket_store
from store.staff import get_staff
from store.supportstats import support_stats
from ui import service
from ui.chatview import ChatView, as_text, friendly_error, restore_handoff, run_action, run_turn, safe_markdown
from ui.signin import (
    SignInRefused,
    StaffSession,
    StaffSignIn,
    check_marketer_password,
    customer_from_token,
    demo_customers,
    marketer_password,
    sign_in_customer,
    token_from,
)

if TYPE_CHECKING:
    from agent.backends import ModelCache
    from index.shared import IndexRegistry

log = logging.getLogger(__name__)

# (role, customer_id) -> a new ChatSession. Tests pass one that uses the scripted model.
SessionFactory = Callable[..., ChatSession]  # (role, customer_id), and conversation_id= to reopen a logged one

HUMAN_REQUEST = {"en": "Please transfer me to a human agent.", "zh": "请为我转接人工客服。"}
POLL_S = 3.0  # how often a handed-off customer's page looks for a person's reply
Y_FROM_ZERO = [0, None]  # bar heights compare only from zero (vega-lite would otherwise zoom in on the data)

# A turn is three events. These two run in the browser, with no round trip:
# TAKE moves the message to a hidden outbox, clears the box and locks the inputs the instant it is sent (an empty or
# blank message stays where it is and nothing is locked); UNLOCK gives the inputs back, with no value, after the
# reply. The reply streams in between, in a handler that never outputs to the message box: a box that is an
# output of the streaming handler gets the reply's last update (and gradio's completion message repeats it)
# after it was unlocked, which raced text typed at once (an empty message was sent).
# "Talk to a human" is never locked: pressed during a reply, its transfer queues behind that reply.
_LOCK = '{"__type__": "update", "interactive": false}'
_UNLOCK = '{"__type__": "update", "interactive": true}'


def take_js(locked: int) -> str:
    """(message) -> [box, *`locked` other inputs, outbox]."""
    return f"""(message) => {{
  const text = (message ?? "").trim();
  if (!text) return [undefined, ...Array({locked}).fill(undefined), ""];
  return [{{"__type__": "update", "value": "", "interactive": false}}, ...Array({locked}).fill({_LOCK}), text];
}}"""


def lock_js(n: int) -> str:
    """JavaScript that returns `n` updates making components non-interactive."""
    return f"() => Array({n}).fill({_LOCK})"


def unlock_js(n: int) -> str:
    """JavaScript that returns `n` updates making components interactive again."""
    return f"() => Array({n}).fill({_UNLOCK})"
CSS = """
#backend-line { font-size: 0.85em; opacity: 0.8; }
"""


class AppServices:
    """What every session shares: settings, the store handle (a connection pool), the session factory, and the
    caches the sessions share (search indexes, loaded chat models).

    The caches belong to these services, not to the process: a test, or a server holding several shops, makes one
    AppServices per shop and nothing is shared between them. They are made on first use, since a session factory
    (tests, the demo) may never need them.
    """

    def __init__(self, settings: Settings, session_factory: SessionFactory | None = None, store=None, *,
                 indexes: IndexRegistry | None = None, models: ModelCache | None = None):
        self.settings = settings
        self._factory = session_factory
        self._store = store
        self._indexes = indexes
        self._models = models
        self._lock = threading.Lock()
        self.staff_sign_in = StaffSignIn()  # failed staff sign-ins, shared by the app's page and the API

    def _once(self, attr: str, make: Callable[[], Any]) -> Any:
        """The value of `attr`, made by `make()` the first time it is asked for (thread-safe)."""
        with self._lock:
            if getattr(self, attr) is None:
                setattr(self, attr, make())
            return getattr(self, attr)

    def store(self):
        """The shop's store, opened on first use."""
        from store.db import open_store

        return self._once("_store", lambda: open_store(self.settings.db_url))

    @property
    def indexes(self) -> IndexRegistry:
        """The search indexes these services' sessions share, made on first use."""
        from index.shared import IndexRegistry

        return self._once("_indexes", IndexRegistry)

    @property
    def models(self) -> ModelCache:
        """The loaded chat models these services' sessions share, made on first use."""
        from agent.backends import ModelCache

        return self._once("_models", ModelCache)

    def open_chat(self, role: str, customer_id: str | None, conversation_id: str | None = None) -> ChatSession:
        """A new chat session for `role`: from the session factory if one was given, else the agent's, with these
        services' store, chat model cache and search indexes. `conversation_id` reopens a logged conversation (its
        history, and whether a person has it) instead of starting one.
        """
        if self._factory is not None:
            if conversation_id is not None:
                return self._factory(role, customer_id, conversation_id=conversation_id)
            return self._factory(role, customer_id)
        try:
            from agent.session import open_session
        except ImportError as exc:
            log.exception("agent.session is missing")
            raise RuntimeError("the agent is not installed") from exc
        return open_session(self.settings, role, customer_id, store=self.store(), indexes=self.indexes,
                            models=self.models, conversation_id=conversation_id)

    def warm(self) -> str:
        """Load the chat model and compute each role's fixed prompt prefix now (agent.session.warm_up), so the first
        customer does not wait for them; returns a line saying how it went. A failure is logged, and the first turn
        meets it again as a friendly error. Sessions from a session factory (tests, a demo without the agent) need
        no warm-up.
        """
        if self._factory is not None:
            return "chat sessions come from a session factory: nothing to warm"
        start = time.perf_counter()
        try:
            from agent.session import warm_up

            computed = warm_up(self.settings, models=self.models)
        except UserError as exc:  # what is wrong and how to mend it, said plainly (no traceback)
            return f"warming the chat model failed: {exc}"
        except Exception:
            log.exception("warming the chat model failed")
            return "warming the chat model failed (see the log); the first turn will load it"
        if not computed:
            return "the chat model is served elsewhere: nothing to warm"
        shown = ", ".join(f"{role} {n} tokens" for role, n in computed.items())
        return f"chat model ready in {time.perf_counter() - start:.1f} s (prompt prefixes computed: {shown})"

    def marketer_context(self):
        """A marketer's ShopContext for the console's direct tool calls."""
        from tools.context import ShopContext

        return ShopContext(store=self.store(), settings=self.settings, role="marketer", indexes=self.indexes)


def describe(info: dict[str, Any]) -> str:
    """The header line: which backend, model and adapter answer (an absent adapter is said, not hidden)."""
    if "adapter" in info and not info["adapter"]:
        info = {**info, "adapter": "none"}
    parts = [f"**{k}:** {v}" for k, v in info.items() if v not in (None, "") and k != "tools"]
    return "Answering: " + " · ".join(parts) if parts else ""


def _address(request: gr.Request | None) -> str:
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


SPEAKERS = {"customer": "Customer", "assistant": "Bot", "staff": "Support", "tool": "Tool"}


def ticket_markdown(ticket: ticket_store.TicketView, lines: list[ticket_store.Line]) -> str:
    """A ticket for the support agent: the bot's summary, then the whole conversation. What customers wrote and
    what staff wrote is shown as text; the bot's replies keep their markdown, without HTML.
    """
    head = (f"### Ticket {ticket.label} · customer `{ticket.customer_id or '-'}` · {ticket.status}\n\n"
            f"**Bot's summary:** {as_text(ticket.summary, inline=True)}\n\n---\n")
    body = []
    for line in lines:
        who = SPEAKERS[line.speaker] + (f" ({as_text(line.staff, inline=True)})" if line.staff else "")
        text = safe_markdown(line.text) if line.speaker == "assistant" else as_text(line.text)
        if line.speaker == "tool":
            text = f"_{as_text(line.text, inline=True)}_"
        body.append(f"**{who}** · {line.created_at:%Y-%m-%d %H:%M}\n\n{text}")
    return head + "\n\n".join(body)


def stats_markdown(stats: dict[str, Any]) -> str:
    """The support statistics as one Markdown paragraph."""
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.0%}"

    reply = stats["reply_time_s"]
    writes = ", ".join(f"{k} {v}" for k, v in stats["confirmed_writes"].items()) or "none"
    intents = ", ".join(f"{k} {v}" for k, v in stats["intents"].items()) or "none"
    return (f"**{stats['since'] or '-'} to {stats['until'] or '-'}:** {stats['conversations']} conversations · "
            f"containment {pct(stats['containment'])} · handoff rate {pct(stats['handoff_rate'])} · "
            f"tickets open {stats['tickets']['open']}, resolved {stats['tickets']['resolved']} · "
            f"reopen rate {pct(stats['reopen_rate'])}\n\n"
            f"What customers came for: {intents}\n\n"
            f"Reply time p50 {reply['p50'] if reply['p50'] is not None else '-'} s, "
            f"p95 {reply['p95'] if reply['p95'] is not None else '-'} s ({reply['turns']} turns) · "
            f"confirmed writes: {writes} · grounding guards: "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats["guards"].items()))


def stats_per_day(stats: dict[str, Any]) -> pd.DataFrame:
    """Long form for a stacked bar chart: day, outcome (contained | handed off), conversations."""
    rows = [{"day": d["day"], "outcome": outcome.replace("_", " "), "conversations": d[outcome]}
            for d in stats["per_day"] for outcome in ("contained", "handed_off")]
    return pd.DataFrame(rows, columns=["day", "outcome", "conversations"])


@dataclass
class ConsoleState:
    """The marketer's browser session: the chat plus where its CSV downloads go."""

    chat: ChatView = field(default_factory=ChatView)
    folder: Path | None = None
    downloads: int = 0
    ctx: Any = None  # the marketer's ShopContext for direct tool calls; its cache keeps the analytics snapshot
    expires_at: float = field(default_factory=lambda: time.time() + STAFF_SESSION_S)  # the sign-in ends then

    def signed_in(self) -> bool:
        return time.time() < self.expires_at


def _messages(view: ChatView | None) -> list[dict[str, Any]]:
    return view.display() if view else []


def _greeting(role: str, identity: str, fresh: bool = False) -> str:
    if role == "marketer":
        start = "New conversation. " if fresh else "Marketer console ready. "
        return start + "Ask about churn, segments, customer value or what reviews say."
    if fresh:
        return "New conversation. How can I help with your orders today?"
    return f"Hi! You are signed in as customer `{identity}`. How can I help with your orders today?"


# ---- panels ----


def _churn_outputs(result: Any, state: ConsoleState) -> tuple:
    view = service.churn_view(result)
    if state.folder is None:
        state.folder = service.session_folder()
    # A new file per result: a download always matches the table on screen, even when updates overlap.
    state.downloads += 1
    name = f"churn-{view.as_of or 'latest'}-{state.downloads}.csv"
    path = service.write_csv(view.table, state.folder, name) if not view.table.empty else None
    note = f"As of {view.as_of}. " if view.as_of else ""
    more = view.scored and view.scored > len(view.table)
    shown = f"{len(view.table)} customers" + (f" of {view.scored} scored" if more else "")
    note += view.note or f"{shown}, riskiest first (the chart counts these). Click a column header to sort."
    return (
        view.table,
        view.risk,
        gr.update(value=str(path) if path else None, interactive=path is not None),
        note,
    )


def _segments_outputs(result: Any) -> tuple:
    view = service.segments_view(result)
    note = (f"As of {view.as_of}. " if view.as_of else "") + view.note
    choices = ["All", *view.sizes["segment"].tolist()]
    return view.sizes, note, gr.update(choices=choices)


def _insights_outputs(result: Any) -> tuple:
    view = service.insights_view(result)
    quotes = "\n".join(f"- {q}" for q in view.quotes) or "_No example quotes._"
    title = f"**Review insights{': ' + view.subject if view.subject else ''}**"
    md = f"{title}\n\n{view.note}\n\n{quotes}".strip()
    return view.aspects, view.ratings, md


# ---- event handlers: build_app wires components to these; each can be called without building the app ----


def _customer_outputs(view: ChatView):
    if view.closed:  # Clear replaced this view: a turn still streaming into it must not redraw the new one
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return _messages(view), view, gr.update(visible=view.awaiting_confirm), view.note()


def _customer_stream(view: ChatView | None, steps):
    view = view.current() if view is not None else ChatView()
    for _ in steps(view):
        yield _customer_outputs(view)


def poll_switch(view: ChatView | None):
    """Look for a person's replies only while a person has the conversation."""
    view = view.current() if view is not None else None
    return gr.Timer(active=bool(view is not None and view.handed_off))


def customer_confirm(view: ChatView | None):
    """Confirm the pending write (the Confirm button), streaming the reply."""
    yield from _customer_stream(view, lambda v: run_action(v, "confirm"))


def customer_cancel(view: ChatView | None):
    """Drop the pending write (the Cancel button), streaming the reply."""
    yield from _customer_stream(view, lambda v: run_action(v, "decline"))


def talk_to_human(view: ChatView | None):
    """Transfer to a human (the button): straight to the tool, not via the model; queued behind a reply under way."""
    yield from _customer_stream(view, lambda v: run_turn(v, HUMAN_REQUEST[v.lang], handoff=True))


def marketer_chat(message: str, state: ConsoleState | None):
    """One turn of the marketer's chat, streaming the reply."""
    # The chat never touches the panels: they keep their own filters, and only their own controls refresh them.
    message = (message or "").strip()
    if not message:  # nothing to send: no turn
        yield gr.skip()
        return
    if state is None or not state.signed_in():
        yield [{"role": "assistant", "content": "Please sign in to the marketer console first."}], None
        return
    chat = state.chat
    for _ in run_turn(chat, message):
        yield (gr.skip(), gr.skip()) if chat.closed else (_messages(chat), state)


class CustomerHandlers:
    """The support chat's events: sign-in (a token, or the demo's picker), turns, the handoff and Clear."""

    def __init__(self, settings: Settings, svc: AppServices):
        self.settings = settings
        self.svc = svc

    def _signed_in(self, cid: str):
        """(view, chat, status) for a signed-in customer: the conversation a person from the shop has, when one is
        still open (a reload must not lose it, nor the replies the person writes there), else a new one.
        """
        store = self.svc.store()
        ticket = ticket_store.open_ticket_of(store, cid)
        if ticket is not None:
            session = self.svc.open_chat("customer", cid, conversation_id=ticket.conversation_id)
            view = ChatView(session=session, identity=cid)
            restore_handoff(view, ticket.label, ticket_store.lines(store, ticket.conversation_id))
            return view, _messages(view), f"Signed in as **{cid}**. {view.word('ticket', ticket=ticket.label)}"
        session = self.svc.open_chat("customer", cid)
        view = ChatView(session=session, identity=cid)
        view.say(_greeting("customer", cid))
        return view, _messages(view), f"Signed in as **{cid}**."

    def load_page(self, request: gr.Request):
        """A token on the link (or in the cookie) signs the customer in; else the demo's picker, or where to sign in.
        Outputs: picker, status, view, chat, note.
        """
        token = token_from(dict(request.query_params), dict(request.cookies)) if request is not None else None
        if token:
            try:
                cid = customer_from_token(self.settings, self.svc.store(), token)
                view, chat, status = self._signed_in(cid)
            except TokenError as exc:
                return gr.skip(), str(exc), None, [], ""
            except Exception as exc:
                log.exception("customer sign-in with a token failed")
                return gr.skip(), f"{friendly_error(exc)}", None, [], ""
            return gr.skip(), status, view, chat, view.note()
        if not self.settings.demo:
            return gr.skip(), "Please open this chat from your account on the shop's site to sign in.", None, [], ""
        picker, status = self.load_customers()
        return picker, status, gr.skip(), gr.skip(), gr.skip()

    def load_customers(self):
        try:
            choices = demo_customers(self.svc.store())
        except Exception as exc:
            log.exception("listing customers failed")
            return gr.update(choices=[]), f"{friendly_error(exc)}"
        if not choices:
            return gr.update(choices=[]), "The shop has no customers yet: run `shopdesk store init --sample`."
        return gr.update(choices=choices, value=None), "Pick a customer to chat as."

    def customer_sign_in(self, customer_id: str | None):
        if not self.settings.demo:  # the picker exists only in demo mode (not even as an API call otherwise)
            refused = "Picking a customer is only possible in demo mode."
            return None, [], refused, gr.skip(), gr.update(visible=False), ""
        try:
            cid = sign_in_customer(self.svc.store(), customer_id or "")
            view, chat, status = self._signed_in(cid)
            backend = ""  # which model and adapter answer is for staff (the marketer console), never customers
        except Exception as exc:
            log.exception("customer sign-in failed")
            return None, [], f"{friendly_error(exc)}", gr.skip(), gr.update(visible=False), ""
        return view, chat, status, backend, gr.update(visible=False), view.note()

    def to_staff(self, view: ChatView, message: str):
        """After a handoff the message goes to the person who has the conversation; the bot stays out."""
        view.add_user(message)
        try:
            ticket_store.customer_writes(self.svc.store(), view.session.conversation_id, message)
        except Exception as exc:
            log.exception("a message to the support team failed")
            view.say(friendly_error(exc))
        else:
            view.say(view.word("sent_to_staff"))
        yield None

    def customer_chat(self, message: str, view: ChatView | None):
        message = (message or "").strip()
        if not message:  # nothing to send: no turn
            yield gr.skip()
            return
        current = view.current() if view is not None else None
        if current is not None and current.handed_off and current.session is not None:
            yield from _customer_stream(view, lambda v: self.to_staff(v, message))
            return
        yield from _customer_stream(view, lambda v: run_turn(v, message))

    def customer_poll(self, view: ChatView | None):
        """A person's replies, once the conversation is theirs (the page asks every few seconds)."""
        view = view.current() if view is not None else None
        if view is None or view.closed or not view.handed_off or view.session is None:
            return gr.skip(), gr.skip()
        try:
            lines = ticket_store.lines(self.svc.store(), view.session.conversation_id, view.staff_seen)
            new = [line for line in lines if line.speaker == "staff"]
        except Exception:
            log.exception("looking for staff replies failed")
            return gr.skip(), gr.skip()
        if not new:
            return gr.skip(), gr.skip()
        for line in new:
            view.show_staff_reply(line.seq, line.text)
        return _messages(view), view.note()

    def customer_clear(self, view: ChatView | None):
        """A new conversation on the server: a new ChatSession for the same customer, nothing carried over."""
        if view is None or view.session is None:
            return [], None, gr.update(visible=False), ""
        view = view.current()
        try:
            session = self.svc.open_chat("customer", view.identity or view.session.customer_id)
        except Exception as exc:
            log.exception("opening a new conversation failed")
            fresh = ChatView(identity=view.identity)
            fresh.say(friendly_error(exc))
        else:
            fresh = ChatView(session=session, identity=view.identity)
            fresh.say(_greeting("customer", fresh.identity, fresh=True))
        view.replace_with(fresh)
        return _messages(fresh), fresh, gr.update(visible=False), ""


class MarketerHandlers:
    """The marketer console's events: sign-in, the analytics panels, the journey and funnel panels and Clear (its
    chat is `marketer_chat`).
    """

    def __init__(self, settings: Settings, svc: AppServices):
        self.settings = settings
        self.svc = svc

    def marketer_sign_in(self, password: str, name: str | None = None, request: gr.Request = None):
        refused = (gr.update(visible=True), gr.update(visible=False), [], gr.skip())
        if self.settings.demo and not (name or "").strip():  # the demo's shared password
            if not check_marketer_password(password, marketer_password(self.settings)):
                return None, "Wrong password.", *refused
        elif not (name or "").strip():
            return None, "Sign in with your staff name and password.", *refused
        else:
            try:
                self.svc.staff_sign_in.sign_in(self.svc.store(), name, password, _address(request), role="marketer")
            except SignInRefused as exc:
                return None, str(exc), *refused
        try:
            session = self.svc.open_chat("marketer", None)
            backend = describe(session.describe_backend())
        except Exception as exc:
            log.exception("marketer sign-in failed")
            return None, f"{friendly_error(exc)}", gr.update(visible=True), gr.update(visible=False), [], gr.skip()
        state = ConsoleState(chat=ChatView(session=session, identity="marketer"))
        state.chat.say(_greeting("marketer", "marketer"))
        return state, "", gr.update(visible=False), gr.update(visible=True), _messages(state.chat), backend

    def _context(self, state: ConsoleState):
        if state.ctx is None:
            state.ctx = self.svc.marketer_context()
        return state.ctx

    def _analytics(self, state: ConsoleState, name: str, **filters):
        return service.call_tool(name, self._context(state), **filters)

    def _result(self, state: ConsoleState, name: str, **filters):
        return service.run_tool(name, self._context(state), **filters)

    def marketer_panels(self, state: ConsoleState | None, segment: str, tier: str, horizon: float,
                        subject_kind: str, subject: str):
        if state is None or not state.signed_in():
            raise gr.Error("Sign in to the marketer console first.")
        out: list[Any] = []
        try:
            result = self._analytics(state, service.CHURN_TOOL, segment=segment, tier=tier,
                                     horizon_days=int(horizon), top_n=service.PANEL_TOP_N)
            out += _churn_outputs(result, state)
        except Exception as exc:  # noqa: BLE001 - one failing panel must not blank the others
            _log_panel_error("churn", exc)
            out += [gr.skip(), gr.skip(), gr.skip(), f"Churn list: {friendly_error(exc)}"]
        try:
            out += _segments_outputs(self._analytics(state, service.SEGMENTS_TOOL, horizon_days=int(horizon)))
        except Exception as exc:  # noqa: BLE001 - one failing panel must not blank the others
            _log_panel_error("segments", exc)
            out += [gr.skip(), f"Segments: {friendly_error(exc)}", gr.skip()]
        try:
            scope = {subject_kind: subject.strip() or None} if subject_kind in ("product", "category") else {}
            out += _insights_outputs(self._analytics(state, service.INSIGHTS_TOOL, **scope))
        except Exception as exc:  # noqa: BLE001 - one failing panel must not blank the others
            _log_panel_error("insights", exc)
            out += [gr.skip(), gr.skip(), f"Review insights: {friendly_error(exc)}"]
        return (state, *out)

    def marketer_journey(self, state: ConsoleState | None, customer: str):
        """The Journey panel: one customer's timeline and stage transitions (get_customer_journey)."""
        if state is None or not state.signed_in():
            raise gr.Error("Sign in to the marketer console first.")
        if not (customer or "").strip():
            return gr.skip(), "Type a customer id or email, then press *Show journey*."
        try:
            view = service.journey_view(self._result(state, service.JOURNEY_TOOL, customer=customer.strip()))
        except Exception as exc:  # noqa: BLE001 - the panel says what failed; the console keeps running
            _log_panel_error("journey", exc)
            return gr.skip(), f"Journey: {friendly_error(exc)}"
        return view.table, safe_markdown(view.summary)

    def marketer_funnel(self, state: ConsoleState | None, segment: str, tier: str, subject_kind: str, subject: str,
                        start: str, end: str):
        """The funnel chart and table (journey_funnel) under the console's filters: segment, tier, the category of
        "Reviews of", and the journey date range.
        """
        if state is None or not state.signed_in():
            raise gr.Error("Sign in to the marketer console first.")
        category = (subject or "").strip() if subject_kind == "category" else None
        try:
            view = service.funnel_view(self._result(state, service.FUNNEL_TOOL, segment=segment, tier=tier,
                                                    category=category, start=start, end=end))
        except Exception as exc:  # noqa: BLE001 - one failing panel must not blank the others
            _log_panel_error("funnel", exc)
            return gr.skip(), gr.skip(), f"Funnel: {friendly_error(exc)}"
        return view.chart, view.table, safe_markdown(view.note)

    def marketer_funnel_quiet(self, state, segment, tier, subject_kind, subject, start, end):
        if state is None:
            return gr.skip(), gr.skip(), gr.skip()
        return self.marketer_funnel(state, segment, tier, subject_kind, subject, start, end)

    def marketer_panels_quiet(self, state, segment, tier, horizon, subject_kind, subject):
        # After sign-in: a failed sign-in leaves no state, and then there is nothing to fill.
        if state is None:
            return (None, *(gr.skip(),) * 10)
        return self.marketer_panels(state, segment, tier, horizon, subject_kind, subject)

    def marketer_clear(self, state: ConsoleState | None):
        """A new conversation on the server for the marketer; the panels and their filters stay as they are."""
        if state is None:
            return [], None
        try:
            session = self.svc.open_chat("marketer", None)
        except Exception as exc:
            log.exception("opening a new conversation failed")
            fresh = ChatView(identity="marketer")
            fresh.say(friendly_error(exc))
        else:
            fresh = ChatView(session=session, identity="marketer")
            fresh.say(_greeting("marketer", "marketer", fresh=True))
        state.chat.replace_with(fresh)
        state.chat = fresh
        return _messages(fresh), state


class StaffHandlers:
    """The staff tab's events: sign-in, the handoff inbox and the support figures."""

    def __init__(self, svc: AppServices):
        self.svc = svc

    def _staff(self, state: StaffSession | None, role: str | None = None) -> StaffSession:
        if state is None or not state.valid():
            raise gr.Error("Your staff session has ended. Please sign in again.")
        account = get_staff(self.svc.store(), state.name)
        if account is None or not account.active or account.role != state.role:
            raise gr.Error("This staff account is disabled or changed; please sign in again.")
        if role is not None and state.role != role:
            raise gr.Error(f"This is for {role} staff.")
        return state

    def staff_sign_in(self, name: str, password: str, request: gr.Request = None):
        """Outputs: state, message, login box, inbox, support view."""
        try:
            staff = self.svc.staff_sign_in.sign_in(self.svc.store(), name, password, _address(request))
        except SignInRefused as exc:
            return None, str(exc), gr.update(visible=True), gr.update(visible=False), gr.update(visible=False)
        except Exception as exc:
            log.exception("staff sign-in failed")
            return (None, friendly_error(exc), gr.update(visible=True), gr.update(visible=False),
                    gr.update(visible=False))
        state = StaffSession(staff.name, staff.role, time.time() + STAFF_SESSION_S)
        return (state, f"Signed in as **{as_text(staff.name, inline=True)}** ({staff.role}).", gr.update(visible=False),
                gr.update(visible=staff.role == "support"), gr.update(visible=True))

    def inbox_list(self, state: StaffSession | None, selected: int | None = None):
        """The open tickets as choices; keeps the selection while it is still open."""
        self._staff(state, "support")
        open_tickets = ticket_store.list_tickets(self.svc.store(), "open")
        choices = [(f"{t.label} · {t.customer_id or '-'} · {t.summary[:60]}", t.number) for t in open_tickets]
        keep = selected if any(t.number == selected for t in open_tickets) else None
        note = f"{len(open_tickets)} open ticket(s)." if open_tickets else "No open tickets."
        return gr.update(choices=choices, value=keep), note

    def inbox_list_quiet(self, state: StaffSession | None):
        if state is None or state.role != "support":
            return gr.skip(), gr.skip()
        return self.inbox_list(state)

    def inbox_show(self, state: StaffSession | None, number: int | None):
        self._staff(state, "support")
        if number is None:
            return ""
        ticket = ticket_store.get_ticket(self.svc.store(), int(number))
        return ticket_markdown(ticket, ticket_store.lines(self.svc.store(), ticket.conversation_id, staff_view=True))

    def inbox_reply(self, state: StaffSession | None, number: int | None, text: str):
        staff = self._staff(state, "support")
        if number is None:
            raise gr.Error("Pick a ticket first.")
        if not (text or "").strip():
            raise gr.Error("Write a reply first.")
        try:
            ticket_store.staff_reply(self.svc.store(), int(number), staff.name, text)
        except UserError as exc:
            raise gr.Error(str(exc)) from None
        return "", self.inbox_show(state, number), "Reply sent."

    def inbox_resolve(self, state: StaffSession | None, number: int | None, note: str):
        staff = self._staff(state, "support")
        if number is None:
            raise gr.Error("Pick a ticket first.")
        try:
            t = ticket_store.resolve(self.svc.store(), int(number), staff.name, note)
        except UserError as exc:
            raise gr.Error(str(exc)) from None
        choices, count = self.inbox_list(state)
        return "", choices, "", f"Ticket {t.label} resolved. {count}", count

    def support_figures(self, state: StaffSession | None, since: str, until: str):
        self._staff(state)
        try:
            first = date.fromisoformat(since.strip()) if (since or "").strip() else None
            last = date.fromisoformat(until.strip()) if (until or "").strip() else None
        except ValueError:
            raise gr.Error("Write dates as YYYY-MM-DD.") from None
        stats = support_stats(self.svc.store(), first, last)
        return (stats_markdown(stats), stats_per_day(stats),
                pd.DataFrame({"tool": list(stats["tools_used"]), "calls": list(stats["tools_used"].values())}))

    def support_figures_quiet(self, state: StaffSession | None):
        if state is None:
            return gr.skip(), gr.skip(), gr.skip()
        return self.support_figures(state, "", "")


def build_app(settings: Settings | None = None, *, session_factory: SessionFactory | None = None, store=None,
              services: AppServices | None = None) -> gr.Blocks:
    """The whole app. `session_factory` and `store` override how sessions and the database are opened (tests);
    `services` shares them with the HTTP API (ui/server.py).
    """
    settings = settings or get_settings()
    svc = services or AppServices(settings, session_factory, store)
    customer = CustomerHandlers(settings, svc)
    marketer = MarketerHandlers(settings, svc)
    staff = StaffHandlers(svc)

    # ---- layout ----

    with gr.Blocks(title="shopdesk") as demo:
        gr.Markdown("# shopdesk\nSupport chat for customers · analytics console for marketers")
        # staff only: filled at the marketer's sign-in (a customer never sees model names or server paths)
        backend_line = gr.Markdown("", elem_id="backend-line")
        with gr.Tabs():
            with gr.Tab("Support chat", id="customer"):
                with gr.Row(equal_height=True, visible=settings.demo):  # demo mode only
                    customer_pick = gr.Dropdown(
                        label="Sign in as (demo customer: pick one, or type a customer id)", choices=[], scale=4,
                        elem_id="customer-pick",
                        allow_custom_value=True,  # sign_in_customer checks the id
                    )
                    sign_in_btn = gr.Button("Sign in", variant="primary", scale=1, elem_id="customer-sign-in")
                c_status = gr.Markdown("Loading customers…" if settings.demo else "Signing in…",
                                       elem_id="customer-status")
                c_chat = gr.Chatbot(label="Support chat", height=460, elem_id="customer-chat", buttons=["copy"],
                                    latex_delimiters=[])  # "$12 … $15" in a message is money, not math
                with gr.Row(visible=False, elem_id="confirm-row") as confirm_row:
                    c_yes = gr.Button("Confirm", variant="primary", elem_id="confirm-btn")
                    c_no = gr.Button("Cancel", variant="stop", elem_id="cancel-btn")
                with gr.Row(equal_height=True):
                    c_msg = gr.Textbox(
                        placeholder="Ask about your orders, returns, exchanges or products…",
                        show_label=False,
                        scale=5,
                        elem_id="customer-msg",
                    )
                    c_send = gr.Button("Send", variant="primary", scale=1, elem_id="customer-send")
                    c_human = gr.Button("Talk to a human", scale=1, elem_id="talk-to-human")
                c_note = gr.Markdown(elem_id="customer-note")  # a handoff says here that a person will reply
                c_outbox = gr.Textbox(visible=False, label="Message", elem_id="customer-outbox")
                c_view = gr.State(None)

            with gr.Tab("Marketer console", id="marketer"):
                m_state = gr.State(None)
                with gr.Group(visible=True) as m_login:
                    m_user = gr.Textbox(label="Staff name", elem_id="marketer-name",
                                        placeholder="demo: leave empty for the demo password" if settings.demo else "")
                    m_pw = gr.Textbox(label="Marketer password", type="password", elem_id="marketer-password")
                    m_login_btn = gr.Button("Open console", variant="primary", elem_id="marketer-sign-in")
                m_login_msg = gr.Markdown(elem_id="marketer-login-msg")
                with gr.Column(visible=False, elem_id="marketer-console") as m_console:
                    with gr.Row():
                        with gr.Column(scale=3):
                            m_chat = gr.Chatbot(label="Ask the data", height=420, elem_id="marketer-chat",
                                                latex_delimiters=[])
                            with gr.Row(equal_height=True):
                                m_msg = gr.Textbox(
                                    placeholder="Who is likely to churn? Which segments are largest?",
                                    show_label=False,
                                    scale=5,
                                    elem_id="marketer-msg",
                                )
                                m_send = gr.Button("Send", variant="primary", scale=1, elem_id="marketer-send")
                                m_outbox = gr.Textbox(visible=False, label="Message", elem_id="marketer-outbox")
                        with gr.Column(scale=1, min_width=220):
                            gr.Markdown("### Filters")
                            m_segment = gr.Dropdown(["All"], value="All", label="Segment", elem_id="f-segment")
                            m_tier = gr.Dropdown(
                                ["All", "high", "medium", "low"], value="All", label="Value tier", elem_id="f-tier"
                            )
                            m_horizon = gr.Slider(30, 365, value=90, step=15, label="Horizon (days)",
                                                  elem_id="f-horizon")
                            m_subject_kind = gr.Radio(["category", "product"], value="category", label="Reviews of",
                                                      elem_id="f-subject-kind")
                            m_subject = gr.Textbox(placeholder="e.g. Headphones (empty: all)", show_label=False,
                                                   elem_id="f-subject")
                            m_start = gr.Textbox(label="Funnel from", elem_id="f-start",
                                                 placeholder="YYYY-MM-DD (empty: 30 days before the end)")
                            m_end = gr.Textbox(label="Funnel to", placeholder="YYYY-MM-DD (empty: the latest event)",
                                               elem_id="f-end")
                            m_refresh = gr.Button("Update panels", elem_id="marketer-refresh")
                    with gr.Row():
                        with gr.Column(scale=3):
                            churn_note = gr.Markdown("Churn list: set the filters and press *Update panels*.",
                                                     elem_id="churn-note")
                            churn_table = gr.Dataframe(
                                label="Likely to churn", interactive=False, max_height=360, elem_id="churn-table"
                            )
                            churn_csv = gr.DownloadButton("Download CSV", interactive=False, elem_id="churn-csv")
                        with gr.Column(scale=2):
                            risk_plot = gr.BarPlot(
                                x="risk", y="customers", title="Churn-risk distribution",
                                label="Churn-risk distribution", x_title="P(churn)", y_title="customers", sort="x",
                                y_lim=Y_FROM_ZERO, elem_id="risk-plot",
                            )
                    with gr.Row():
                        with gr.Column():
                            seg_note = gr.Markdown(elem_id="segments-note")
                            seg_plot = gr.BarPlot(
                                x="segment", y="customers", title="Segment sizes", label="Segment sizes", sort="-y",
                                x_label_angle=-30, y_lim=Y_FROM_ZERO, elem_id="segments-plot",
                            )
                        with gr.Column():
                            aspects_plot = gr.BarPlot(
                                x="aspect", y="mentions", color="sentiment", title="What reviews mention",
                                label="Review aspects", y_lim=Y_FROM_ZERO, elem_id="aspects-plot",
                                color_map={"positive": "#2e9e5b", "negative": "#d64545", "mentioned": "#888888"},
                            )
                            ratings_plot = gr.BarPlot(
                                x="rating", y="reviews", title="Ratings", label="Ratings", y_lim=Y_FROM_ZERO,
                                elem_id="ratings-plot",
                            )
                            quotes_md = gr.Markdown(elem_id="review-quotes")
                    with gr.Row():
                        with gr.Column(scale=3):
                            gr.Markdown("### Customer journey")
                            with gr.Row(equal_height=True):
                                j_customer = gr.Textbox(placeholder="Customer id or email", show_label=False, scale=4,
                                                        elem_id="journey-customer")
                                j_show = gr.Button("Show journey", scale=1, elem_id="journey-show")
                            j_summary = gr.Markdown(elem_id="journey-summary")
                            j_table = gr.Dataframe(label="Timeline", interactive=False, max_height=420, wrap=True,
                                                   elem_id="journey-table")
                        with gr.Column(scale=2):
                            funnel_plot = gr.BarPlot(
                                x="stage", y="customers", title="Journey funnel", label="Journey funnel",
                                sort=service.FUNNEL_ORDER, y_lim=Y_FROM_ZERO, elem_id="funnel-plot",
                            )
                            funnel_table = gr.Dataframe(label="Funnel", interactive=False, wrap=True,
                                                        elem_id="funnel-table")
                            funnel_note = gr.Markdown(elem_id="funnel-note")

            with gr.Tab("Staff", id="staff"):
                st_state = gr.State(None)
                with gr.Group(visible=True) as st_login:
                    st_name = gr.Textbox(label="Staff name", elem_id="staff-name")
                    st_pw = gr.Textbox(label="Password", type="password", elem_id="staff-password")
                    st_btn = gr.Button("Sign in", variant="primary", elem_id="staff-sign-in")
                st_msg = gr.Markdown(elem_id="staff-login-msg")
                with gr.Column(visible=False, elem_id="inbox") as inbox:
                    gr.Markdown("### Inbox: conversations handed to a person")
                    with gr.Row(equal_height=True):
                        ib_pick = gr.Dropdown(label="Open tickets", choices=[], scale=4, elem_id="inbox-tickets")
                        ib_refresh = gr.Button("Refresh", scale=1, elem_id="inbox-refresh")
                    ib_count = gr.Markdown(elem_id="inbox-count")
                    ib_ticket = gr.Markdown(elem_id="inbox-ticket")
                    ib_reply = gr.Textbox(label="Reply to the customer", lines=3, elem_id="inbox-reply")
                    ib_send = gr.Button("Send reply", variant="primary", elem_id="inbox-send")
                    ib_note = gr.Textbox(label="Resolution note", elem_id="inbox-note")
                    ib_resolve = gr.Button("Resolve ticket", variant="stop", elem_id="inbox-resolve")
                    ib_status = gr.Markdown(elem_id="inbox-status")
                with gr.Column(visible=False, elem_id="support-view") as support_view:
                    gr.Markdown("### Support")
                    with gr.Row(equal_height=True):
                        sv_since = gr.Textbox(label="From (YYYY-MM-DD, empty: the start)", elem_id="support-since")
                        sv_until = gr.Textbox(label="To (YYYY-MM-DD, empty: today)", elem_id="support-until")
                        sv_refresh = gr.Button("Update", elem_id="support-refresh")
                    sv_figures = gr.Markdown(elem_id="support-figures")
                    sv_days = gr.BarPlot(x="day", y="conversations", color="outcome", title="Conversations per day",
                                         label="Conversations per day", y_lim=Y_FROM_ZERO, elem_id="support-days",
                                         color_map={"contained": "#2e9e5b", "handed off": "#d68a45"})
                    sv_tools = gr.BarPlot(x="tool", y="calls", title="Tools used", label="Tools used", sort="-y",
                                          x_label_angle=-30, y_lim=Y_FROM_ZERO, elem_id="support-tools")

        # ---- events ----
        poll = gr.Timer(POLL_S, active=False)  # runs only while a person has the conversation
        poll.tick(customer.customer_poll, [c_view], [c_chat, c_note], api_name=False, show_progress="hidden")
        poll_io = {"fn": poll_switch, "inputs": [c_view], "outputs": [poll], "api_name": False,
                   "show_progress": "hidden"}
        staff_login_io = {"inputs": [st_name, st_pw], "outputs": [st_state, st_msg, st_login, inbox, support_view]}
        stats_io = {"outputs": [sv_figures, sv_days, sv_tools]}
        for trigger, name in ((st_btn.click, "staff_sign_in"), (st_pw.submit, False)):
            trigger(staff.staff_sign_in, api_name=name, **staff_login_io).then(
                staff.inbox_list_quiet, [st_state], [ib_pick, ib_count], api_name=False).then(
                staff.support_figures_quiet, [st_state], api_name=False, **stats_io)
        ib_refresh.click(staff.inbox_list, [st_state, ib_pick], [ib_pick, ib_count], api_name="inbox_list")
        ib_pick.change(staff.inbox_show, [st_state, ib_pick], [ib_ticket], api_name="inbox_show")
        ib_send.click(staff.inbox_reply, [st_state, ib_pick, ib_reply], [ib_reply, ib_ticket, ib_status],
                      api_name="inbox_reply")
        # resolving changes the queue's count and the support figures (tickets open and resolved): both follow
        ib_resolve.click(staff.inbox_resolve, [st_state, ib_pick, ib_note],
                         [ib_note, ib_pick, ib_ticket, ib_status, ib_count], api_name="inbox_resolve").success(
            staff.support_figures, [st_state, sv_since, sv_until], api_name=False, **stats_io)
        sv_refresh.click(staff.support_figures, [st_state, sv_since, sv_until], api_name="support_stats", **stats_io)
        demo.load(customer.load_page, None, [customer_pick, c_status, c_view, c_chat, c_note],
                  api_name=False).then(**poll_io)
        reply_outputs = [c_chat, c_view, confirm_row, c_note]
        if settings.demo:
            sign_in_btn.click(
                customer.customer_sign_in, [customer_pick],
                [c_view, c_chat, c_status, backend_line, confirm_row, c_note], api_name="customer_sign_in",
            ).then(**poll_io)
        # Every turn: lock in the browser, stream the reply (never into the box), unlock in the browser. The reply
        # draws its own working bubble at once, so gradio's progress overlay is hidden.
        c_inputs = [c_msg, c_send, c_yes, c_no]
        reply_io = {"outputs": reply_outputs, "trigger_mode": "multiple", "show_progress": "hidden"}
        unlock_io = {"fn": None, "outputs": c_inputs, "js": unlock_js(len(c_inputs)), "api_name": False,
                     "show_progress": "hidden"}
        take_io = {"fn": None, "inputs": [c_msg], "outputs": [*c_inputs, c_outbox], "js": take_js(len(c_inputs) - 1),
                   "api_name": False, "show_progress": "hidden"}
        c_msg.submit(**take_io).then(
            customer.customer_chat, [c_outbox, c_view], api_name="customer_chat", **reply_io
        ).then(**unlock_io).then(**poll_io)
        c_send.click(**take_io).then(customer.customer_chat, [c_outbox, c_view], api_name=False, **reply_io).then(
            **unlock_io
        ).then(**poll_io)
        lock_io = {"fn": None, "outputs": c_inputs, "js": lock_js(len(c_inputs)), "api_name": False,
                   "show_progress": "hidden"}
        for button, handler, name in ((c_yes, customer_confirm, "customer_confirm"),
                                      (c_no, customer_cancel, "customer_cancel")):
            button.click(**lock_io).then(handler, [c_view], api_name=name, **reply_io).then(**unlock_io)
        # Never locked, never unlocks the others: a reply under way keeps the box locked until it ends.
        c_human.click(talk_to_human, [c_view], api_name="talk_to_human", **reply_io).then(**poll_io)
        # Clear locks the inputs too, so a message typed at once goes to the new conversation, not the old one.
        c_chat.clear(**lock_io).then(customer.customer_clear, [c_view], reply_outputs, api_name="customer_clear",
                                     show_progress="hidden").then(**unlock_io).then(**poll_io)

        panel_outputs = [churn_table, risk_plot, churn_csv, churn_note, seg_plot, seg_note, m_segment,
                         aspects_plot, ratings_plot, quotes_md]
        login_io = {"inputs": [m_pw, m_user],
                    "outputs": [m_state, m_login_msg, m_login, m_console, m_chat, backend_line]}
        panels_io = {"inputs": [m_state, m_segment, m_tier, m_horizon, m_subject_kind, m_subject],
                         "outputs": [m_state, *panel_outputs]}
        funnel_io = {"inputs": [m_state, m_segment, m_tier, m_subject_kind, m_subject, m_start, m_end],
                     "outputs": [funnel_plot, funnel_table, funnel_note]}
        m_login_btn.click(marketer.marketer_sign_in, api_name="marketer_sign_in", **login_io).success(
            marketer.marketer_panels_quiet, api_name=False, **panels_io
        ).success(marketer.marketer_funnel_quiet, api_name=False, **funnel_io)
        m_pw.submit(marketer.marketer_sign_in, api_name=False, **login_io).success(
            marketer.marketer_panels_quiet, api_name=False, **panels_io
        ).success(marketer.marketer_funnel_quiet, api_name=False, **funnel_io)
        journey_io = {"inputs": [m_state, j_customer], "outputs": [j_table, j_summary]}
        j_show.click(marketer.marketer_journey, api_name="marketer_journey", **journey_io)
        j_customer.submit(marketer.marketer_journey, api_name=False, **journey_io)
        m_inputs = [m_msg, m_send]
        m_reply_io = {"inputs": [m_outbox, m_state], "outputs": [m_chat, m_state], "trigger_mode": "multiple",
                      "show_progress": "hidden"}
        m_take_io = {"fn": None, "inputs": [m_msg], "outputs": [*m_inputs, m_outbox], "js": take_js(len(m_inputs) - 1),
                     "api_name": False, "show_progress": "hidden"}
        m_unlock_io = {"fn": None, "outputs": m_inputs, "js": unlock_js(len(m_inputs)), "api_name": False,
                       "show_progress": "hidden"}
        m_msg.submit(**m_take_io).then(marketer_chat, api_name="marketer_chat", **m_reply_io).then(**m_unlock_io)
        m_send.click(**m_take_io).then(marketer_chat, api_name=False, **m_reply_io).then(**m_unlock_io)
        m_refresh.click(marketer.marketer_panels, api_name="marketer_panels", **panels_io).success(
            marketer.marketer_funnel, api_name="marketer_funnel", **funnel_io)
        m_lock_io = {"fn": None, "outputs": m_inputs, "js": lock_js(len(m_inputs)), "api_name": False,
                     "show_progress": "hidden"}
        m_chat.clear(**m_lock_io).then(marketer.marketer_clear, [m_state], [m_chat, m_state],
                                       api_name="marketer_clear", show_progress="hidden").then(**m_unlock_io)

    # Sessions are independent; the local model serialises its own generate() calls.
    demo.queue(default_concurrency_limit=16)
    return demo


def _log_panel_error(panel: str, exc: BaseException) -> None:
    from tools.errors import ToolError

    if isinstance(exc, ToolError):
        log.info("%s panel: %s", panel, exc)
    else:
        log.exception("%s panel failed", panel)


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, **kwargs) -> None:
    """The app alone on gradio's own server (no HTTP API: `shopdesk ui` serves both, see ui/server.py)."""
    app.launch(server_name=host, server_port=port, css=CSS, show_error=False, **kwargs)


if __name__ == "__main__":
    launch(build_app())
