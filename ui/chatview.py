"""Turning the agent's events into chat messages: streamed text, tool steps, a working indicator, confirm and handoff.

Customers see each tool step as one plain line ("Looked up order #W2611340"); marketers (staff) see collapsible
panels with the arguments and the tool's complete rendering. What a person typed is shown as text, never as markup.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.api import AgentEvent, ChatSession
from store.tickets import ticket_label
from tools.results import lang_of

log = logging.getLogger(__name__)

Lang = Literal["en", "zh"]
HANDOFF_WAIT_S = 600  # "Talk to a human" queues behind the turn under way for at most this long

# ---- text safety ----

# Characters with a meaning in markdown, written as HTML character references: they read the same but format
# nothing (a backslash escape would show inside an autolinked URL).
_ENTITIES = {c: f"&#{ord(c)};" for c in "\\`*_[]!|~$"}
_MD_SPECIAL = re.compile("[" + re.escape("".join(_ENTITIES)) + "]")
_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+(?=[.)]))", re.MULTILINE)


def as_text(text: str, inline: bool = False) -> str:
    """A person's message as literal text in the chat's markdown: no HTML, no images, no formatting (`inline`: a
    piece within a line, where "#" or "1." cannot start a heading or a list).
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(lambda m: _ENTITIES[m.group(0)], text)
    if inline:
        return text
    return _LINE_START.sub(lambda m: m.group(1) + "".join(f"&#{ord(c)};" for c in m.group(2)), text)


def safe_markdown(text: str) -> str:
    """Assistant and tool text keeps its markdown (tables, lists, bold) but loses raw HTML and images: review text
    or an echoed message could otherwise make the browser fetch a URL.
    """
    return text.replace("<", "&lt;").replace("![", "!\\[")


# ---- words the UI says (English and Chinese) ----

WORDS: dict[str, dict[Lang, str]] = {
    "working": {"en": "Working on it…", "zh": "正在处理…"},
    "writing": {"en": "Writing the answer…", "zh": "正在整理回复…"},
    "starting": {"en": "Starting up: the first answer after a restart takes a little longer…",
                 "zh": "正在启动:重启后的第一条回复会稍慢一些…"},
    "queued": {"en": "Busy with other customers: {ahead} ahead of you. Your answer comes next…",
               "zh": "正在为其他顾客服务:您前面还有 {ahead} 位,马上就轮到您…"},
    "confirming": {"en": "Carrying out your request…", "zh": "正在执行您的请求…"},
    "declining": {"en": "Cancelling that request…", "zh": "正在取消该请求…"},
    "transferring": {"en": "Asking a person from our team to join…", "zh": "正在为您转接人工客服…"},
    "handed_off": {
        "en": "**You are being transferred to a human agent.** A person from our team will reply here; they can see "
              "this conversation, so you don't need to repeat anything.",
        "zh": "**正在为您转接人工客服。** 客服人员会在这里回复您,他们能看到此前的对话,您无需重复。",
    },
    "handed_off_note": {
        "en": "**A person from our team will reply here.** The assistant has stopped answering; you can keep "
              "writing, and your messages go to them.",
        "zh": "**人工客服会在这里回复您。** 机器人已停止回答;您可以继续留言,消息会转给客服人员。",
    },
    "ticket": {"en": "Your ticket number is **{ticket}**.", "zh": "您的工单号是 **{ticket}**。"},
    "restored": {"en": "Welcome back. This is your conversation with our support team (ticket **{ticket}**); a "
                       "person will reply here.",
                 "zh": "欢迎回来。这是您与人工客服的对话(工单 **{ticket}**),客服人员会在这里回复您。"},
    "staff_says": {"en": "**Support team:** {text}", "zh": "**人工客服:** {text}"},
    "sent_to_staff": {"en": "Sent to our support team; they will reply here.",
                      "zh": "已转给客服人员,他们会在这里回复您。"},
    "handoff_queued": {
        "en": "You asked for a person: you will be transferred as soon as this answer is done.",
        "zh": "您已要求转人工:当前回复结束后即为您转接。",
    },
    "already_handed_off": {
        "en": "You are already waiting for a person from our team; they will reply here.",
        "zh": "您已在等待人工客服,他们会在这里回复您。",
    },
    "confirm_prompt": {"en": "**Please confirm:** {text}\n\nUse the Confirm or Cancel button below.",
                       "zh": "**请确认:** {text}\n\n请使用下方的“确认”或“取消”按钮。"},
    "busy": {"en": "I am still answering your previous message; please send this again when I am done.",
             "zh": "我还在回复您上一条消息,请稍后再发送。"},
    "sign_in": {"en": "Please sign in first.", "zh": "请先登录。"},
    "pressed_confirm": {"en": "Confirm", "zh": "确认"},
    "pressed_cancel": {"en": "Cancel", "zh": "取消"},
}

# Customer tool steps: (while it runs, once done, when it failed); {order_id} / {product_id} come from the call.
STEPS: dict[str, dict[Lang, tuple[str, str, str]]] = {
    "list_my_orders": {"en": ("Looking up your orders…", "Looked up your orders", "Couldn't look up your orders"),
                       "zh": ("正在查询您的订单…", "已查询您的订单", "未能查询您的订单")},
    "get_order_details": {"en": ("Looking up order {order_id}…", "Looked up order {order_id}",
                                 "Couldn't look up order {order_id}"),
                          "zh": ("正在查询订单 {order_id}…", "已查询订单 {order_id}", "未能查询订单 {order_id}")},
    "cancel_pending_order": {"en": ("Checking whether order {order_id} can be cancelled…",
                                    "Checked the cancellation of order {order_id}",
                                    "Couldn't prepare the cancellation of order {order_id}"),
                             "zh": ("正在确认订单 {order_id} 能否取消…", "已核对订单 {order_id} 的取消",
                                    "未能准备订单 {order_id} 的取消")},
    "modify_pending_order_address": {"en": ("Checking the address change for order {order_id}…",
                                            "Checked the address change for order {order_id}",
                                            "Couldn't prepare the address change for order {order_id}"),
                                     "zh": ("正在核对订单 {order_id} 的地址修改…", "已核对订单 {order_id} 的地址修改",
                                            "未能准备订单 {order_id} 的地址修改")},
    "modify_pending_order_items": {"en": ("Checking the item change for order {order_id}…",
                                          "Checked the item change for order {order_id}",
                                          "Couldn't prepare the item change for order {order_id}"),
                                   "zh": ("正在核对订单 {order_id} 的商品修改…", "已核对订单 {order_id} 的商品修改",
                                          "未能准备订单 {order_id} 的商品修改")},
    "return_delivered_order_items": {"en": ("Checking the return for order {order_id}…",
                                            "Checked the return for order {order_id}",
                                            "Couldn't prepare the return for order {order_id}"),
                                     "zh": ("正在核对订单 {order_id} 的退货…", "已核对订单 {order_id} 的退货",
                                            "未能准备订单 {order_id} 的退货")},
    "exchange_delivered_order_items": {"en": ("Checking the exchange for order {order_id}…",
                                              "Checked the exchange for order {order_id}",
                                              "Couldn't prepare the exchange for order {order_id}"),
                                       "zh": ("正在核对订单 {order_id} 的换货…", "已核对订单 {order_id} 的换货",
                                              "未能准备订单 {order_id} 的换货")},
    "get_product_details": {"en": ("Looking up the product…", "Looked up product {product_id}",
                                   "Couldn't look up that product"),
                            "zh": ("正在查询商品…", "已查询商品 {product_id}", "未能查询该商品")},
    "search_products": {"en": ("Searching the catalog…", "Searched the catalog", "Couldn't search the catalog"),
                        "zh": ("正在搜索商品…", "已搜索商品", "未能搜索商品")},
    "search_reviews": {"en": ("Reading reviews…", "Read reviews", "Couldn't read reviews"),
                       "zh": ("正在查看评价…", "已查看评价", "未能查看评价")},
    "review_insights": {"en": ("Summarizing reviews…", "Summarized reviews", "Couldn't summarize reviews"),
                        "zh": ("正在汇总评价…", "已汇总评价", "未能汇总评价")},
    "recommend_products": {"en": ("Finding products for you…", "Found product suggestions",
                                  "Couldn't find product suggestions"),
                           "zh": ("正在为您挑选商品…", "已找到推荐商品", "未能找到推荐商品")},
    "transfer_to_human": {"en": ("Asking a person from our team to join…", "Asked a person from our team to join",
                                 "Couldn't reach a person from our team"),
                          "zh": ("正在转接人工客服…", "已转接人工客服", "未能转接人工客服")},
}
# After the Confirm button: the write was carried out.
DONE_WRITES: dict[str, dict[Lang, str]] = {
    "cancel_pending_order": {"en": "Cancelled order {order_id}", "zh": "已取消订单 {order_id}"},
    "modify_pending_order_address": {"en": "Changed the address of order {order_id}",
                                     "zh": "已修改订单 {order_id} 的地址"},
    "modify_pending_order_items": {"en": "Changed the items of order {order_id}", "zh": "已修改订单 {order_id} 的商品"},
    "return_delivered_order_items": {"en": "Started the return for order {order_id}",
                                     "zh": "已为订单 {order_id} 办理退货"},
    "exchange_delivered_order_items": {"en": "Started the exchange for order {order_id}",
                                       "zh": "已为订单 {order_id} 办理换货"},
}
OTHER_STEP: dict[Lang, tuple[str, str, str]] = {
    "en": ("Checking the shop's records…", "Checked the shop's records", "Couldn't check the shop's records"),
    "zh": ("正在查询店铺记录…", "已查询店铺记录", "未能查询店铺记录"),
}
# A step whose tool needs something from the person (a ToolInputError: the cancellation's reason, a price range):
# the reply asks for it, so the step did not fail.
ASKS_STEP: dict[Lang, tuple[str, str]] = {
    "en": ("One more detail needed for order {order_id}", "One more detail needed"),
    "zh": ("订单 {order_id} 还需要您补充信息", "还需要您补充信息"),
}
_STEP_ARGS = ("order_id", "product_id")  # the only call arguments a customer's step line shows
# carried out: the write ran after the Confirm button; asks: the tool needs an answer from the person first
Stage = Literal["running", "done", "failed", "carried_out", "asks"]


def step_line(name: str | None, arguments: dict[str, Any] | None, stage: Stage, lang: Lang = "en") -> str:
    """A customer's plain line for a tool step: no arguments but the order or product id, no results, no errors."""
    phrases = STEPS.get(name or "", {}).get(lang) or OTHER_STEP[lang]
    if stage == "carried_out":
        phrase = DONE_WRITES.get(name or "", {}).get(lang) or phrases[1]
    elif stage == "asks":
        phrase = ASKS_STEP[lang][0 if (arguments or {}).get("order_id") else 1]
    else:
        phrase = phrases[("running", "done", "failed").index(stage)]
    args = arguments or {}
    values = {k: as_text(" ".join(str(args[k]).split())[:40], inline=True)
              for k in _STEP_ARGS if isinstance(args.get(k), (str, int))}
    try:
        return phrase.format(**values)
    except KeyError:  # the call lacks the id the phrase names: say it without
        return re.sub(r"\s*\{\w+\}", "", phrase)


def _failed(event: AgentEvent) -> bool:
    return isinstance(event.data, dict) and "error" in event.data


def _asks(event: AgentEvent) -> bool:
    return _failed(event) and event.data.get("type") == "ToolInputError"


# ---- the view ----


@dataclass
class ChatView:
    """What one browser session's chat shows, and the session that answers it (kept in a gr.State)."""

    session: ChatSession | None = None
    identity: str = ""  # who is signed in, as shown in the header
    messages: list[dict[str, Any]] = field(default_factory=list)
    awaiting_confirm: bool = False  # the Confirm / Cancel buttons show (mirrors session.pending)
    handed_off: bool = False  # a person takes over (mirrors session.handed_off)
    working: str | None = None  # what the bot is doing now; shown as a transient assistant bubble
    handoff_queued: bool = False  # "Talk to a human" was pressed while a turn was under way
    confirming: bool = False  # the turn under way is the Confirm button's: its write step is carried out
    closed: bool = False  # Clear replaced this view; a turn still streaming into it must not redraw the screen
    successor: ChatView | None = None  # the view Clear replaced this one with (a message sent meanwhile goes there)
    lang: Lang = "en"  # the language of the person's latest message, for the UI's own words
    ticket: str | None = None  # the handoff's ticket number as the customer is told it (T-00042)
    staff_seen: int = -1  # the log's sequence number of the last staff reply shown
    _calls: dict[str, int] = field(default_factory=dict)  # call_id -> index of its panel in messages (staff)
    _call_names: dict[str, str] = field(default_factory=dict)
    _call_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    _text_at: int | None = None  # index of the assistant message the current turn streams into
    _handoff_shown: bool = False  # this turn announced the handoff (its final text need not say it again)
    _raw: str = ""  # the streamed text as received (made safe as a whole: a chunk can split "![")
    _busy: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one turn at a time per session

    @property
    def staff(self) -> bool:
        """Marketers see the tool panels with arguments and results; customers see plain step lines."""
        return getattr(self.session, "role", "customer") == "marketer"

    def word(self, key: str, **kw: Any) -> str:
        text = WORDS[key][self.lang]
        return text.format(**kw) if kw else text

    def current(self) -> ChatView:
        """This view, or the one Clear replaced it with."""
        view = self
        while view.closed and view.successor is not None:
            view = view.successor
        return view

    def replace_with(self, fresh: ChatView) -> None:
        self.closed, self.successor = True, fresh

    def tool_name(self, event: AgentEvent) -> str | None:
        return event.name or self._call_names.get(event.call_id or "")

    def display(self) -> list[dict[str, Any]]:
        """The messages to draw: the conversation, plus the working bubble while the bot works."""
        shown = copy.deepcopy(self.messages)
        if self.working:
            shown.append({"role": "assistant", "content": f"_{self.working}_"})
        return shown

    def note(self) -> str:
        """The line under the message box: a handoff says a person will reply; a queued one says it is coming."""
        if self.handed_off:
            note = self.word("handed_off_note")
            return f"{note} {self.word('ticket', ticket=self.ticket)}" if self.ticket else note
        if self.handoff_queued:
            return self.word("handoff_queued")
        return ""

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": as_text(text)})
        self._text_at = None

    def say(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": safe_markdown(text)})
        self._text_at = None

    def show_staff_reply(self, seq: int, text: str) -> None:
        """A reply a person from the shop wrote (shown as text, like anything a person types)."""
        if seq <= self.staff_seen:
            return
        self.messages.append({"role": "assistant", "content": self.word("staff_says", text=as_text(text))})
        self.staff_seen = seq
        self._text_at = None

    def sync(self) -> None:
        """Take the buttons' and the handoff's state from the session (agent.api); a session without `pending`
        (a test double) leaves them as its confirm / handoff events set them.
        """
        if self.session is None:
            return
        if hasattr(self.session, "pending"):
            self.awaiting_confirm = getattr(self.session, "pending", None) is not None
        if getattr(self.session, "handed_off", False):
            self.handed_off = True

    def apply(self, event: AgentEvent) -> None:
        """Show one agent event."""
        kind = event.kind
        if kind == "text":
            if self._text_at is None:
                self.messages.append({"role": "assistant", "content": ""})
                self._text_at = len(self.messages) - 1
                self._raw = ""
            self._raw += event.text
            self.messages[self._text_at]["content"] = safe_markdown(self._raw)
            self.working = None  # the text itself shows the bot is answering
        elif kind == "status":
            data = event.data if isinstance(event.data, dict) else {}
            if data.get("starting"):
                self.working = self.word("starting")
            elif data.get("ahead"):
                self.working = self.word("queued", ahead=data["ahead"])
        elif kind == "tool_call":
            call_id = event.call_id or f"call_{len(self._call_names)}"
            self._call_names[call_id] = event.name or "tool"
            self._call_args[call_id] = dict(event.arguments or {})
            self.working = (f"Running {event.name}…" if self.staff
                            else self._step(event.name, event.arguments, "running"))
            if self.staff:
                args = json.dumps(event.arguments or {}, ensure_ascii=False, indent=1)
                self.messages.append({
                    "role": "assistant",
                    "content": f"Arguments:\n```json\n{args}\n```",
                    "metadata": {"title": f"Tool: {event.name}", "id": call_id, "status": "pending"},
                })
                self._calls[call_id] = len(self.messages) - 1
            self._text_at = None
        elif kind == "tool_result":
            self.working = self.word("writing")
            if self.staff:
                self._staff_result(event)
            else:
                name = self.tool_name(event)
                args = self._call_args.get(event.call_id or "") or event.arguments
                stage = ("asks" if _asks(event) else "failed" if _failed(event)
                         else "carried_out" if self.confirming else "done")
                line = self._step(name, args, stage)
                mark = {"asks": "? ", "failed": "✗ "}.get(stage, "✓ ")
                self.messages.append({"role": "assistant", "content": mark + line})
            self._text_at = None
        elif kind == "confirm":
            self.awaiting_confirm = True
            self.working = None
            self.say(self.word("confirm_prompt", text=event.text))
        elif kind == "handoff":
            self.handed_off = True
            self.working = None
            number = event.data.get("ticket") if isinstance(event.data, dict) else None
            if isinstance(number, int):
                self.ticket = ticket_label(number)
            if self.staff:
                self.say(f"**Transferred to a human agent.** Their summary:\n\n> {event.text}")
            else:
                told = self.word("handed_off") + (f" {self.word('ticket', ticket=self.ticket)}" if self.ticket else "")
                self.messages.append({"role": "assistant", "content": told})
                self._text_at = None
                self._handoff_shown = True
        elif kind == "final":
            self.working = None
            data = event.data if isinstance(event.data, dict) else {}
            if data.get("awaiting_confirmation"):
                self._text_at = None  # the confirm message already says it
            elif self._handoff_shown and not self.staff:
                self._text_at = None  # this turn's handoff message already says it, in the customer's words
            elif self._text_at is not None:
                # The final text may differ from what streamed (the fact check can replace it).
                self.messages[self._text_at]["content"] = safe_markdown(event.text)
            elif event.text:
                self.say(event.text)
            self._text_at = None
        elif kind == "error":
            self.working = None
            self.say(event.text)

    def _step(self, name: str | None, arguments: dict[str, Any] | None, stage: Stage) -> str:
        return step_line(name, arguments, stage, self.lang)

    def _staff_result(self, event: AgentEvent) -> None:
        # Complete: a marketer's table in chat is the tool's whole rendering, not a preview.
        text = event.text or json.dumps(event.data, ensure_ascii=False, default=str)
        at = self._calls.get(event.call_id or "")
        if at is None:  # a result without its call: show it as its own panel
            self.messages.append(
                {"role": "assistant", "content": "", "metadata": {"title": f"Tool: {self.tool_name(event) or 'tool'}"}}
            )
            at = len(self.messages) - 1
        panel = self.messages[at]
        panel["content"] += f"\n\nResult:\n\n{safe_markdown(text)}"
        panel["metadata"] = {**panel["metadata"], "status": "done"}
        if _failed(event):
            panel["metadata"]["log"] = "failed"

    def finish_pending(self) -> None:
        """Close panels of calls that never got a result (the turn failed half-way)."""
        self.working = None
        for at in self._calls.values():
            meta = self.messages[at].get("metadata") or {}
            if meta.get("status") == "pending":
                self.messages[at]["metadata"] = {**meta, "status": "done", "log": "no result"}


def _frames(exc: BaseException) -> list[str]:
    """Files of every frame of the exception and the ones it was raised from."""
    files: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        files += [f.filename for f in traceback.extract_tb(exc.__traceback__)]
        files.append(type(exc).__module__ or "")
        exc = exc.__cause__ or exc.__context__
    return files


def friendly_error(exc: BaseException) -> str:
    """One sentence for the user about what failed; never a traceback."""
    from shopdesk.output import UserError
    from tools.errors import ToolError

    if isinstance(exc, ToolError):
        return exc.user_message("en")
    if isinstance(exc, UserError):
        return str(exc)
    where = " ".join(_frames(exc)).replace("\\", "/")
    if "chromadb" in where:
        return ("The product search index is unreachable right now, so I cannot search products or reviews. "
                "Please try again later.")
    if any(k in where for k in ("sqlalchemy", "psycopg", "sqlite3")):
        return "The shop database is unreachable right now. Please try again in a moment."
    if (any(k in where for k in ("openai", "httpx", "httpcore", "requests", "urllib3"))
            or isinstance(exc, ConnectionError)):
        return "The language model server is unreachable right now. Please try again in a moment."
    return "Sorry, something went wrong while answering. Please try again, or ask to talk to a human."


# ---- turns ----


def restore_handoff(view: ChatView, ticket: str, lines: list) -> None:
    """Show a conversation a person from the shop has, as its customer saw it (store.tickets.lines: their messages,
    the bot's replies, the staff's), reopened after a reload: the bot stays out and new replies keep coming.
    """
    for line in lines:
        if line.speaker == "customer":
            view.add_user(line.text)
            view.lang = lang_of(line.text)
        elif line.speaker == "staff":
            view.show_staff_reply(line.seq, line.text)
        elif line.speaker == "assistant":
            view.say(line.text)
    view.staff_seen = max([view.staff_seen, *(line.seq for line in lines)])
    view.handed_off, view.ticket = True, ticket
    view.say(view.word("restored", ticket=ticket))


def run_turn(view: ChatView, message: str, handoff: bool = False) -> Iterator[AgentEvent | None]:
    """Send `message` (with `handoff`: transfer to a human directly, queued behind a turn under way) and update
    `view` event by event; yields after every visible change (the event, or None).
    """
    if not handoff:
        return (yield from _run(view, message, lambda s: s.respond(message), "working", lang=lang_of(message)))
    if view.handed_off:  # pressed again: a person is already coming; the session needs no second transfer
        view.add_user(message)
        view.say(view.word("already_handed_off"))
        yield None
        return None
    return (yield from _run(view, message, lambda s: s.hand_off(message), "transferring", wait=True))


def run_action(view: ChatView, action: Literal["confirm", "decline"]) -> Iterator[AgentEvent | None]:
    """The Confirm / Cancel buttons: `session.confirm()` / `session.decline()`, streamed like a message. The chat
    shows which button was pressed; no text goes to the model or through the yes/no parsing.
    """
    if action == "confirm":
        return (yield from _run(view, view.word("pressed_confirm"), lambda s: s.confirm(), "confirming",
                                confirming=True))
    return (yield from _run(view, view.word("pressed_cancel"), lambda s: s.decline(), "declining"))


def _run(view: ChatView, shown: str, start: Callable[[ChatSession], Iterator[AgentEvent]], working: str, *,
         wait: bool = False, lang: Lang | None = None, confirming: bool = False) -> Iterator[AgentEvent | None]:
    if not view._busy.acquire(blocking=False):
        if not wait:  # e.g. a message sent while a reply still streams: refused, never interleaved
            view.add_user(shown)
            view.say(view.word("busy"))
            yield None
            return
        view.handoff_queued = True
        yield None  # the note under the box says the transfer comes next
        got = view._busy.acquire(timeout=HANDOFF_WAIT_S)
        view.handoff_queued = False
        if not got:
            view.add_user(shown)
            view.say(view.word("busy"))
            yield None
            return
    try:
        if view.closed:  # Clear replaced this view while the turn waited
            return
        view.lang = lang or view.lang
        view.confirming = confirming
        view._handoff_shown = False
        view.add_user(shown)
        view.awaiting_confirm = False
        view.working = view.word(working)
        yield None  # at once: the person's message and the working bubble
        if view.session is None:
            view.working = None
            view.say(view.word("sign_in"))
            yield None
            return
        try:
            for event in start(view.session):
                view.apply(event)
                if event.kind in ("final", "error"):
                    view.sync()  # the buttons and the handoff note as the session now has them
                yield event
        except Exception as exc:  # the boundary: log the bug, tell the user in one sentence
            log.exception("turn failed")
            view.finish_pending()
            view.say(friendly_error(exc))
            view.sync()
            yield None
    finally:
        view.working = None
        view.confirming = False
        view._busy.release()
