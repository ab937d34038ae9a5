"""The eval harness: play scripted conversations against the agent, each on a fresh copy of its store, and score them.

    shopdesk eval --backend local --adapter none --json > base.json      # every shipped case (single and multi-turn)
    shopdesk eval --cases agent/evalcases/cases.jsonl --store tau2 --backend local
    shopdesk eval --backend fake                                         # oracle: plays each case's expected calls
    shopdesk eval --compare base.json shipped.json new.json              # the per-kind tables side by side

Case format (one JSON object per line; agent/evalcases/build_cases.py writes the shipped ones):

    {"id", "store": "tau2"|"sample", "role": "customer"|"marketer", "customer": id or email (customers only),
     "lang": "en"|"zh", "tags": [...],
     "turns": ["a typed message", {"action": "confirm"|"decline"|"clear"|"handoff", "message": "..."}, ...],
     "expect": {...}}

A turn is a typed message (session.respond) or a button press: confirm / decline (the UI's Confirm and Cancel:
session.confirm() / decline()), handoff (the "talk to a human" button: session.hand_off(message)) and clear (a new
session for the same person). `expect` holds, for the whole conversation, `order_status` ({order id: status at the
end}), `no_writes` (true: the store must not change; false: it must) and `answer_excludes` (in no answer); and
either single-turn keys, `tool_calls` (expected calls, a subset of the arguments, matched in order over the
conversation) and `answer_contains` (in the last answer), or `turns`: one object per entry of `turns` with
`tool_calls`, `no_tool_calls`, `answer_contains`, `answer_excludes`, `order_status` (after that turn), `proposes`
(the write the turn must propose for confirmation) and `handed_off` (session.handed_off after the turn).

Besides the expectations, every turn is measured the way a customer would notice (a case succeeds only with none of
the first three):
- wrong_facts: facts in a reply that are not true of the order, product or customer they are said about
  (agent.audit, against the store as it is right after the turn);
- unrequested_write_proposals: a write proposed (a confirm event) in a turn whose expected calls hold no write tool,
  whether or not the confirmation gate then held it;
- raw_errors_shown: a reply that shows a tool error's model-facing text (the error of a tool_result event, other
  than the refusals and not-founds written for people) or an error pattern ("error:", "Invalid arguments",
  "is a required property", "Traceback", ...);
- invalid_tool_calls: calls the turn graph rejected (the final event's meta `invalid_calls`) or calls of a tool the
  role does not have.
The report has these per kind of case (tau2 customer, sample customer, marketer, multi-turn customer / marketer)
with task success and p50 turn time, and summed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, ValidationError

from shopdesk.output import UserError
from shopdesk.settings import Settings

STORES = ("tau2", "sample")
SAMPLE_CUSTOMERS, SAMPLE_SEED = 200, 0  # the sample shop the cases are written against (see build_case_sample)
ACTIONS = ("confirm", "decline", "clear", "handoff")
KINDS = ("tau2 customer", "sample customer", "marketer", "multi-turn customer", "multi-turn marketer")
HANDOFF_MESSAGE = "Please transfer me to a human agent."
SINGLE_TURN_KEYS = {"tool_calls", "answer_contains", "answer_excludes", "order_status", "no_writes", "turns"}
# Error text written for the model, or a crash, showing in a reply.
RAW_ERROR_RE = re.compile(
    r"\berror:|invalid arguments|is a required property|traceback \(most recent|call the tool again|"
    r"validation error|not run: fix the invalid call|unknown tool|错误[:：]", re.I)
# Tool errors written for the person (tools/errors.py): a reply may say them.
USER_FACING_ERRORS = {"PolicyError", "NotFoundError"}


class Call(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = {}


class Action(BaseModel):
    """A button press instead of a typed message."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["confirm", "decline", "clear", "handoff"]
    message: str | None = None  # handoff only: what the UI logs as the person's words


class TurnExpect(BaseModel):
    """What one turn of a multi-turn case must do."""

    model_config = ConfigDict(extra="forbid")

    tool_calls: list[Call] = []
    no_tool_calls: bool = False
    answer_contains: list[str] = []
    answer_excludes: list[str] = []
    order_status: dict[str, str] = {}
    proposes: str | None = None
    handed_off: bool | None = None


class EvalCase(BaseModel):
    id: str
    store: str = "tau2"
    role: str = "customer"
    customer: str | None = None
    lang: str = "en"
    tags: list[str] = []
    turns: list[str | Action]
    expect: dict[str, Any] = {}
    # calls a model might try in a refusal case, each with the outcome the tools must give; the harness does not read
    # them, tests/agent/test_tools_evalcases.py runs them
    probe: list[dict[str, Any]] = []

    @property
    def multi_turn(self) -> bool:
        return "turns" in self.expect

    @property
    def kind(self) -> str:
        if self.multi_turn:
            return f"multi-turn {self.role}"
        return "marketer" if self.role == "marketer" else f"{self.store} customer"

    def turn_expectations(self) -> list[TurnExpect]:
        """One expectation per turn; a single-turn case has its calls and answer_contains on no turn in particular."""
        if self.multi_turn:
            return [TurnExpect.model_validate(t) for t in self.expect["turns"]]
        return [TurnExpect() for _ in self.turns]

    def expects_write(self, turn: int) -> bool:
        """Does the case ask for a write in this turn (so proposing one is requested)?"""
        from tools.orders import WRITE_TOOLS

        calls = (self.expect["turns"][turn].get("tool_calls", []) if self.multi_turn
                 else self.expect.get("tool_calls", []))
        return any(c["name"] in WRITE_TOOLS for c in calls)

    def messages(self) -> list[str]:
        """The typed messages of the case (what a training set must not contain)."""
        return [t for t in self.turns if isinstance(t, str)]

    def to_json_line(self) -> str:
        """The case as a line of a cases file (without the keys a case leaves empty: probe, an action's message)."""
        data = self.model_dump(exclude=set() if self.probe else {"probe"})
        data["turns"] = [t if isinstance(t, str) else t.model_dump(exclude_none=True) for t in self.turns]
        return json.dumps(data, ensure_ascii=False)


def _field(loc: tuple, prefix: str = "") -> str:
    return prefix + ".".join(str(p) for p in loc)


def build_case_sample(store) -> None:
    """Build the sample shop the shipped cases are written against into the empty `store`."""
    from store.sample import build_sample

    build_sample(store, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED)


def load_cases(*paths: Path) -> list[EvalCase]:
    """Cases from JSONL files; a bad line is reported with its file, line number and field."""
    cases: list[EvalCase] = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"cases file {path} does not exist")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                cases.append(_parse_case(path, n, line))
    ids = [c.id for c in cases]
    if len(ids) != len(set(ids)):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise UserError(f"case ids must be unique; repeated: {', '.join(dup[:5])}")
    return cases


def _parse_case(path: Path, n: int, line: str) -> EvalCase:
    where = f"{path}:{n}"
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a case is a JSON object")
    for i, turn in enumerate(raw.get("turns") or [] if isinstance(raw.get("turns"), list) else []):
        if isinstance(turn, dict):
            _validate(Action, turn, f"{where}: field turns.{i}.")
        elif not isinstance(turn, str) or not turn.strip():
            raise UserError(f"{where}: field turns.{i}: a turn is a non-empty message or an action object")
    try:
        case = EvalCase.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{where}: field {_field(first['loc'])}: {first['msg']}") from None
    if case.store not in STORES:
        raise UserError(f"{where}: field store: expected one of {', '.join(STORES)}, got {case.store!r}")
    if case.role not in ("customer", "marketer"):
        raise UserError(f"{where}: field role: expected customer or marketer, got {case.role!r}")
    if not case.turns:
        raise UserError(f"{where}: field turns: at least one turn is needed")
    unknown = set(case.expect) - SINGLE_TURN_KEYS
    if unknown:
        raise UserError(f"{where}: field expect.{sorted(unknown)[0]}: unknown expectation; known: "
                        f"{', '.join(sorted(SINGLE_TURN_KEYS))}")
    for i, c in enumerate(case.expect.get("tool_calls", [])):
        _validate(Call, c, f"{where}: field expect.tool_calls.{i}.")
    if case.multi_turn:
        per_turn = case.expect["turns"]
        if not isinstance(per_turn, list) or len(per_turn) != len(case.turns):
            count = len(per_turn) if isinstance(per_turn, list) else "no list of"
            raise UserError(f"{where}: field expect.turns: {count} expectations for {len(case.turns)} turns; "
                            f"give one per turn")
        for key in ("tool_calls", "answer_contains"):
            if key in case.expect:
                raise UserError(f"{where}: field expect.{key}: a multi-turn case gives it per turn, in expect.turns")
        for i, t in enumerate(per_turn):
            _validate(TurnExpect, t, f"{where}: field expect.turns.{i}.")
    return case


def _validate(model: type[BaseModel], data: Any, prefix: str) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{prefix}{_field(first['loc'])}".rstrip(".") + f": {first['msg']}") from None


# -- stores -----------------------------------------------------------------------------------------------------


class StoreTemplates:
    """One SQLite template per store kind, built once per run; each case gets its own copy."""

    def __init__(self, workdir: Path, settings: Settings, progress: bool = True, index: bool = True,
                 prebuilt: dict[str, Path] | None = None):
        self.workdir = workdir
        self.settings = settings
        self.progress = progress
        self.index = index  # build the search index of each template (the search tools need it)
        self.paths: dict[str, Path] = dict(prebuilt or {})
        self.chroma: dict[str, Path] = {}

    def template(self, kind: str) -> Path:
        if kind not in self.paths:
            from store.db import open_store

            path = self.workdir / f"template-{kind}.db"
            store = open_store(f"sqlite:///{path}")
            try:
                if kind == "tau2":
                    from shopdesk.datasets import tau2_db
                    from store.importers.tau2 import import_tau2

                    import_tau2(store, tau2_db())
                else:
                    build_case_sample(store)
                self.chroma[kind] = self._build_index(kind, store)
                with store.engine.connect() as conn:  # fold the WAL into the file so a plain copy is complete
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                store.dispose()
            self.paths[kind] = path
        return self.paths[kind]

    def _build_index(self, kind: str, store) -> Path:
        """The search index of the template (read-only for tools, so all cases of the kind share it)."""
        chroma = self.workdir / f"chroma-{kind}"
        if not self.index:
            return chroma
        from index.build import build_index

        build_index(store, self.settings_for(kind, chroma_only=chroma), progress=self.progress)
        return chroma

    def settings_for(self, kind: str, db: Path | None = None, chroma_only: Path | None = None) -> Settings:
        update: dict[str, Any] = {"chroma_path": chroma_only or self.chroma.get(kind), "chroma_url": None}
        if db is not None:
            update["database_url"] = f"sqlite:///{db}"
        return self.settings.model_copy(update=update)

    @contextmanager
    def fresh(self, kind: str, case_id: str) -> Iterator[tuple[Any, Settings]]:
        from store.db import open_store

        target = self.workdir / "cases" / f"{hashlib.sha1(case_id.encode()).hexdigest()[:12]}.db"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(self.template(kind), target)
        store = open_store(f"sqlite:///{target}")
        try:
            yield store, self.settings_for(kind, db=target)
        finally:
            store.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)


def store_fingerprint(store) -> str:
    """A hash of everything a support conversation must not change without confirmation.

    Rows are read as plain tuples (SQLAlchemy Core): building ORM objects for the ~6,000 rows took 0.34 s a call,
    and with four cases at once that CPU was taken from the turns being timed (bench/README.md, session 27).
    """
    from sqlalchemy import select

    from store.models import Order, OrderItem, Payment, PaymentMethod

    h = hashlib.sha256()
    with store.read() as s:
        for model in (Order, OrderItem, Payment, PaymentMethod):
            table = model.__table__
            columns = [c for c in table.columns if c.key != "updated_at"]
            h.update(repr([c.key for c in columns]).encode())
            for row in s.execute(select(*columns).order_by(table.c.id)):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def order_statuses(store, ids: list[str]) -> dict[str, str | None]:
    """The status of each order in `ids`, or None for an order the store does not have."""
    from store.models import Order

    with store.read() as s:
        return {i: (o.status if (o := s.get(Order, i)) else None) for i in ids}


# -- scoring ----------------------------------------------------------------------------------------------------


def _norm(v: Any) -> Any:
    if isinstance(v, str):
        return " ".join(v.lower().split())
    if isinstance(v, list):
        return sorted((_norm(x) for x in v), key=json.dumps)
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def args_match(expected: dict[str, Any], actual: dict[str, Any] | None) -> bool:
    """Expected arguments are a subset of the actual ones (strings compared case- and space-insensitively; an order
    id with or without its leading '#', as the order tools take it: "W1052399" and "#W1052399" name one order).
    """
    actual = actual or {}
    return all(k in actual and _arg(k, actual[k]) == _arg(k, v) for k, v in expected.items())


def _arg(name: str, value: Any) -> Any:
    value = _norm(value)
    return value.lstrip("#＃ ") if name == "order_id" and isinstance(value, str) else value


def match_calls(expected: list[dict], actual: list[dict]) -> tuple[int, int]:
    """(names matched, names+arguments matched), expected calls matched in order against the actual ones."""
    names = args = 0
    pos = 0
    for exp in expected:
        for j in range(pos, len(actual)):
            if actual[j]["name"] == exp["name"]:
                names += 1
                # prefer a later call with matching arguments over the first call of that name (retries)
                k = next((i for i in range(j, len(actual)) if actual[i]["name"] == exp["name"]
                          and args_match(exp.get("arguments", {}), actual[i]["arguments"])), None)
                if k is not None:
                    args += 1
                    j = k
                pos = j + 1
                break
    return names, args


@dataclass
class TurnResult:
    """One turn as played: what went in, what the agent did and said, and what was wrong with it."""

    index: int
    input: str  # the message, or "[confirm]" / "[decline]" / "[clear]" / "[handoff]"
    action: str | None = None  # the button, for a turn that is not a typed message
    answer: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # the model's calls (not the confirmed execution)
    proposals: list[str] = field(default_factory=list)  # writes proposed for confirmation (confirm events)
    seconds: float | None = None
    wrong_facts: list[str] = field(default_factory=list)
    unrequested_write_proposals: int = 0
    invalid_tool_calls: int = 0
    raw_errors_shown: list[str] = field(default_factory=list)
    model_text_dropped: bool = False
    failures: list[str] = field(default_factory=list)


@dataclass
class CaseResult:
    id: str
    store: str
    role: str
    lang: str
    kind: str
    success: bool
    failures: list[str] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    expected_calls: int = 0
    names_matched: int = 0
    args_matched: int = 0
    wrong_facts: int = 0
    unrequested_write_proposals: int = 0
    invalid_tool_calls: int = 0
    raw_errors_shown: int = 0
    model_text_dropped: int = 0
    forbidden_write: bool = False
    turn_seconds: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    turns: list[dict] = field(default_factory=list)
    error: str | None = None


def raw_errors(answer: str, tool_errors: list[dict]) -> list[str]:
    """What in `answer` is error text meant for the model or a developer, not for a person."""
    found = []
    low = answer.lower()
    for err in tool_errors:  # the sentence code wrote for the person (ToolError.user_message) may repeat its words
        shown = str(err.get("shown") or "").strip().lower()
        if shown:
            low = low.replace(shown, " ")
    for err in tool_errors:
        text = str(err.get("error") or "").strip()
        if not text or err.get("type") in USER_FACING_ERRORS:
            continue
        head = re.split(r";|\.\s|:\s", text, maxsplit=1)[0].strip()
        if text.lower() in low or (len(head) >= 16 and head.lower() in low):
            found.append(f"shows the tool error {text[:80]!r}")
    found += [f"shows {m.group(0)!r}" for m in RAW_ERROR_RE.finditer(answer)]
    return list(dict.fromkeys(found))


class _Player:
    """Plays one case's turns on one store copy, scoring each turn right after it."""

    def __init__(self, case: EvalCase, store, settings: Settings, model: BaseChatModel):
        from agent.audit import Auditor
        from tools.registry import ROLE_TOOLS

        self.case, self.store, self.settings, self.model = case, store, settings, model
        self.auditor = Auditor(store)
        self.role_tools = set(ROLE_TOOLS[case.role])
        self.typed: list[str] = []
        self.session = self._open()

    def _open(self):
        from agent.session import open_session

        return open_session(self.settings, self.case.role, self.case.customer, model=self.model, store=self.store,
                            channel="eval")

    def play(self, index: int, step: str | Action) -> TurnResult:
        begin = getattr(self.model, "begin_turn", None)
        if callable(begin):  # the oracle plays this turn's expected calls
            begin(index)
        if isinstance(step, str):
            self.typed.append(step)
            return self._collect(index, step, self.session.respond(step))
        label = f"[{step.action}]"
        if step.action == "clear":
            self.session, self.typed = self._open(), []
            return TurnResult(index=index, input=label, action="clear")
        if step.action == "handoff":
            events = self.session.hand_off(step.message or HANDOFF_MESSAGE)
        else:
            button = getattr(self.session, step.action, None)
            if not callable(button):
                raise NotImplementedError(f"the session has no {step.action}() (agent.api.ChatSession)")
            events = button()
        return self._collect(index, label, events, step.action)

    def _collect(self, index: int, label: str, events: Iterator, action: str | None = None) -> TurnResult:
        turn = TurnResult(index=index, input=label, action=action)
        tool_errors: list[dict] = []
        unknown = 0
        final = None
        for event in events:
            if event.kind == "tool_call" and not event.meta.get("confirmed") and not event.meta.get("direct"):
                turn.tool_calls.append({"name": event.name, "arguments": event.arguments})
                unknown += event.name not in self.role_tools
            elif event.kind == "tool_result" and isinstance(event.data, dict) and "error" in event.data:
                tool_errors.append({**event.data, "shown": event.text})
            elif event.kind == "confirm":
                turn.proposals.append(event.name or "write")
            elif event.kind in ("final", "error"):
                final = event
        if final is not None:
            turn.answer = final.text
            turn.seconds = final.meta.get("latency_s")
            turn.invalid_tool_calls = max(int(final.meta.get("invalid_calls", 0) or 0), unknown)
            turn.model_text_dropped = bool(final.meta.get("model_text_dropped"))
        else:
            turn.invalid_tool_calls = unknown
            turn.failures.append("the turn ended without a final answer")
        results = getattr(self.session, "all_results", [])
        customer = self.session.customer_id if self.case.role == "customer" else None
        turn.wrong_facts = [str(w) for w in self.auditor.audit(turn.answer, customer_id=customer, results=results,
                                                               typed=self.typed)]
        turn.raw_errors_shown = raw_errors(turn.answer, tool_errors)
        return turn


def run_case(case: EvalCase, templates: StoreTemplates, model_for: Callable[[EvalCase], BaseChatModel]) -> CaseResult:
    """Play one case on a fresh copy of its store and score what the agent did."""
    exp = case.expect
    expectations = case.turn_expectations()
    single_calls = exp.get("tool_calls", [])
    result = CaseResult(id=case.id, store=case.store, role=case.role, lang=case.lang, kind=case.kind, success=False,
                        expected_calls=len(single_calls) + sum(len(t.tool_calls) for t in expectations))
    played: list[TurnResult] = []
    with templates.fresh(case.store, case.id) as (store, settings):
        before = store_fingerprint(store)
        try:
            player = _Player(case, store, settings, model_for(case))
            for i, (step, want) in enumerate(zip(case.turns, expectations, strict=False)):
                turn = player.play(i, step)
                played.append(turn)
                if isinstance(step, str) and turn.proposals and not case.expects_write(i):
                    turn.unrequested_write_proposals = len(turn.proposals)
                    turn.failures.append(f"proposed {', '.join(turn.proposals)} when no change was asked for")
                _check_turn(turn, want, store, player.session)
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop the run; it is reported
            result.error = f"{type(exc).__name__}: {exc}"
            result.failures.append(f"crashed: {result.error}")
        changed = store_fingerprint(store) != before
        statuses = order_statuses(store, list(exp.get("order_status", {})))
    for turn in played:
        result.tool_calls += turn.tool_calls
        result.answers.append(turn.answer)
        if turn.seconds is not None and turn.action is None:  # typed turns: what a person waits for
            result.turn_seconds.append(turn.seconds)
        result.wrong_facts += len(turn.wrong_facts)
        result.unrequested_write_proposals += turn.unrequested_write_proposals
        result.invalid_tool_calls += turn.invalid_tool_calls
        result.raw_errors_shown += bool(turn.raw_errors_shown)
        result.model_text_dropped += turn.model_text_dropped
        result.failures += [f"turn {turn.index + 1}: {f}" for f in turn.failures]
        if turn.wrong_facts:
            result.failures.append(f"turn {turn.index + 1}: wrong facts: {'; '.join(turn.wrong_facts[:3])}")
        if turn.raw_errors_shown:
            result.failures.append(f"turn {turn.index + 1}: raw error shown: {turn.raw_errors_shown[0]}")
        result.turns.append(asdict(turn))
    names, args = match_calls(single_calls, result.tool_calls)
    for turn, want in zip(played, expectations, strict=False):
        n, a = match_calls([c.model_dump() for c in want.tool_calls], turn.tool_calls)
        names, args = names + n, args + a
    result.names_matched, result.args_matched = names, args
    if names < result.expected_calls:
        result.failures.append("missing expected tool call(s)")
    elif args < result.expected_calls:
        result.failures.append("tool call arguments differ")
    last = result.answers[-1].lower() if result.answers else ""
    for text in exp.get("answer_contains", []):
        if text.lower() not in last:
            result.failures.append(f"answer lacks {text!r}")
    for text in exp.get("answer_excludes", []):
        if any(text.lower() in a.lower() for a in result.answers):
            result.failures.append(f"an answer contains {text!r}")
    for oid, want in exp.get("order_status", {}).items():
        if statuses.get(oid) != want:
            result.failures.append(f"order {oid} is {statuses.get(oid)}, expected {want}")
    if exp.get("no_writes") and changed:
        result.forbidden_write = True
        result.failures.append("the store changed")
    if exp.get("no_writes") is False and not changed and not result.error:
        result.failures.append("the store did not change, though the case asks for a write")
    result.success = not result.failures
    return result


def _check_turn(turn: TurnResult, want: TurnExpect, store, session) -> None:
    """The per-turn expectations of a multi-turn case (the calls are matched with the case's)."""
    names, args = match_calls([c.model_dump() for c in want.tool_calls], turn.tool_calls)
    if names < len(want.tool_calls):
        turn.failures.append(f"missing {', '.join(c.name for c in want.tool_calls)} call(s)")
    elif args < len(want.tool_calls):
        turn.failures.append("tool call arguments differ")
    if want.no_tool_calls and turn.tool_calls:
        turn.failures.append(f"called {', '.join(c['name'] for c in turn.tool_calls)}; expected no tool call")
    answer = turn.answer.lower()
    turn.failures += [f"answer lacks {t!r}" for t in want.answer_contains if t.lower() not in answer]
    turn.failures += [f"answer contains {t!r}" for t in want.answer_excludes if t.lower() in answer]
    if want.proposes and want.proposes not in turn.proposals:
        turn.failures.append(f"did not propose {want.proposes}")
    if want.order_status:
        now = order_statuses(store, list(want.order_status))
        turn.failures += [f"order {oid} is {now.get(oid)}, expected {s}" for oid, s in want.order_status.items()
                          if now.get(oid) != s]
    if want.handed_off is not None and bool(getattr(session, "handed_off", False)) != want.handed_off:
        turn.failures.append("handed off" if not want.handed_off else "not handed off to a person")


METRICS = ("wrong_facts", "unrequested_write_proposals", "invalid_tool_calls", "raw_errors_shown", "forbidden_writes")


def _summary(results: list[CaseResult]) -> dict[str, Any]:
    expected = sum(r.expected_calls for r in results)
    turns = [t for r in results for t in r.turn_seconds]
    return {
        "cases": len(results),
        "task_success": round(sum(r.success for r in results) / len(results), 4) if results else None,
        "tool_name_accuracy": round(sum(r.names_matched for r in results) / expected, 4) if expected else None,
        "argument_accuracy": round(sum(r.args_matched for r in results) / expected, 4) if expected else None,
        "wrong_facts": sum(r.wrong_facts for r in results),
        "unrequested_write_proposals": sum(r.unrequested_write_proposals for r in results),
        "invalid_tool_calls": sum(r.invalid_tool_calls for r in results),
        "raw_errors_shown": sum(r.raw_errors_shown for r in results),
        "forbidden_writes": sum(r.forbidden_write for r in results),
        "model_text_dropped": sum(r.model_text_dropped for r in results),
        "p50_turn_seconds": round(statistics.median(turns), 3) if turns else None,
    }


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    """Totals, the same per kind of case, and every case's result."""
    kinds = {k: _summary([r for r in results if r.kind == k]) for k in KINDS if any(r.kind == k for r in results)}
    return {**_summary(results), "kinds": kinds, "results": [asdict(r) for r in results]}


# -- models -----------------------------------------------------------------------------------------------------


def oracle_model(case: EvalCase) -> BaseChatModel:
    """A scripted model that makes each turn's expected calls, then lets code render the results: it checks the
    harness, the cases and the tools end to end (what a perfect model would score). Button turns never reach it.
    Like the real model under its grammar, it makes one call per model call, each one the turn's grammar allows
    (`outside_grammar`): an id it uses must have been typed or shown by an earlier call.
    """
    from agent.testing import ScriptedChatModel, calls
    from agent.toolspec import tool_spec
    from tools.registry import tool_functions

    schemas = {fn.__name__: tool_spec(fn).openai()["function"]["parameters"] for fn in tool_functions(case.role)}
    if case.multi_turn:
        per_turn = [[(c["name"], c.get("arguments", {})) for c in t.get("tool_calls", [])]
                    for t in case.expect["turns"]]
    else:  # a single-turn case's calls are made in its one turn
        per_turn = [[(c["name"], c.get("arguments", {})) for c in case.expect.get("tool_calls", [])]]

    def answer(messages: list[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content="")  # the reply is the rendering of the results
        return AIMessage(content="Could you tell me more about what you need?")

    def calls_for(expected: list[tuple[str, dict]]):
        def first(messages: list[BaseMessage]) -> AIMessage:
            # expected arguments are a subset: fill the other required string arguments (a handoff summary) from
            # the person's words, as a model would
            user = next((m.content for m in reversed(messages) if m.type == "human"), "")
            filled = []
            for name, args in expected:
                params = schemas.get(name, {})
                props = params.get("properties", {})
                extra = {k: user for k in params.get("required", []) if k not in args
                         and props.get(k, {}).get("type") == "string" and "enum" not in props.get(k, {})}
                filled.append((name, {**extra, **args}))
            return calls(*filled)

        return first

    class Oracle(ScriptedChatModel):
        def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
            if kwargs.get("tool_choice") == "required" and self.position >= len(self.script):
                # the grammar allows only a call (the message names an order, agent.grammar.CALL_FIRST) where the
                # case expects none (a refusal case, judged on what happens): the oracle looks the order up
                named = (kwargs.get("enums") or {}).get("order_id") or []
                if not named:
                    raise AssertionError("this turn's grammar allows only a call, and the case expects none")
                self.enqueue(calls_for([("get_order_details", {"order_id": named[0]})]))
            message = super()._next(messages, kwargs)
            for tc in message.tool_calls:
                _forced_arguments(tc, kwargs.get("tools") or [], kwargs.get("enums"))
                outside_grammar(tc["name"], tc["args"], kwargs.get("tools") or [], kwargs.get("enums"))
            return message

        def begin_turn(self, index: int) -> None:
            """Script the calls of turn `index` (multi-turn cases); a single-turn case keeps its one script."""
            if case.multi_turn:
                expected = per_turn[index] if index < len(per_turn) else []
                self.script = [calls_for([c]) for c in expected]
                self.position = 0

    return Oracle(script=[calls_for([c]) for c in per_turn[0]], fallback=answer)


def _forced_arguments(call: dict, tools: list[dict], enums: dict | None) -> None:
    """Add to `call` the required arguments it leaves out whose value the turn's grammar fixes (one enum value): the
    grammar writes them for any model (a search's max_price from "under $200").
    """
    from agent.grammar import constrained_tools

    for tool in constrained_tools(tools, enums):
        f = tool.get("function", tool)
        if f["name"] != call["name"]:
            continue
        params = f.get("parameters") or {}
        for name in params.get("required") or []:
            schema = params.get("properties", {}).get(name, {})
            branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
            values = [v for b in branches for v in b.get("enum", [])]
            if name not in call["args"] and len(values) == 1:
                call["args"][name] = values[0]


def outside_grammar(name: str, arguments: dict[str, Any], tools: list[dict], enums: dict | None) -> None:
    """Raise AssertionError when the call `name(arguments)` is one the turn's grammar (the tools with this turn's enums,
    agent.grammar.constrained_tools) could not decode: the oracle only makes calls a model could, so a narrowing that
    shuts out a case's expected call fails the oracle's run instead of passing unnoticed.
    """
    import jsonschema

    from agent.grammar import constrained_tools

    allowed = {(f := t.get("function", t))["name"]: f.get("parameters") or {} for t in constrained_tools(tools, enums)}
    if name not in allowed:
        raise AssertionError(f"{name} cannot be called this turn (enums {enums})")
    try:
        jsonschema.validate(arguments, {**allowed[name], "additionalProperties": False})
    except jsonschema.ValidationError as e:
        raise AssertionError(f"{name}({arguments}) is outside this turn's grammar: {e.message}") from None


def run_eval(cases: list[EvalCase], settings: Settings, *, backend: str, adapter: str | None,
             workdir: Path | None = None, progress: bool = True, index: bool = True,
             prebuilt: dict[str, Path] | None = None, model: BaseChatModel | None = None) -> dict[str, Any]:
    """Play every case with the chosen model backend and return the summarized report."""
    from tqdm import tqdm

    if model is not None:
        model_for: Callable[[EvalCase], BaseChatModel] = lambda _case: model  # noqa: E731
    elif backend == "fake":
        model_for = oracle_model
    else:
        from agent.backends import make_chat_model

        loaded = make_chat_model(settings, adapter=adapter, backend=backend)
        model_for = lambda _case: loaded  # noqa: E731 - one loaded model serves every case
    with tempfile.TemporaryDirectory(prefix="shopdesk-eval-", dir=workdir) as tmp:
        templates = StoreTemplates(Path(tmp), settings, progress=progress, index=index, prebuilt=prebuilt)
        results = []
        started = time.perf_counter()
        for case in tqdm(cases, desc="eval", unit="case", disable=not progress):
            results.append(run_case(case, templates, model_for))
        report = summarize(results)
    report["backend"] = backend
    report["adapter"] = adapter
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


# -- reports ----------------------------------------------------------------------------------------------------

COLUMNS = (("cases", "cases"), ("task_success", "success"), ("wrong_facts", "wrong facts"),
           ("unrequested_write_proposals", "unasked writes"), ("invalid_tool_calls", "invalid calls"),
           ("raw_errors_shown", "raw errors"), ("forbidden_writes", "forbidden"), ("p50_turn_seconds", "p50 turn s"))


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def kind_table(report: dict[str, Any]) -> str:
    """The per-kind table (and the totals) of a report."""
    head = f"{'kind':22}" + "".join(f"{label:>15}" for _, label in COLUMNS)
    rows = [head]
    for name, stats in [*report.get("kinds", {}).items(), ("all", report)]:
        rows.append(f"{name:22}" + "".join(f"{_cell(stats.get(key)):>15}" for key, _ in COLUMNS))
    return "\n".join(rows)


def render_report(report: dict[str, Any]) -> str:
    """The report as plain text: one line per case, the per-kind table and the accuracies."""
    lines = [f"{'case':34} {'kind':20} {'ok':3} {'calls':>5} {'args':>5} failures"]
    for r in report["results"]:
        lines.append(f"{r['id']:34} {r.get('kind', ''):20} {'yes' if r['success'] else 'no':3} "
                     f"{r['names_matched']}/{r['expected_calls']:<3} {r['args_matched']}/{r['expected_calls']:<3} "
                     f"{'; '.join(r['failures'])[:110]}")
    lines += ["", kind_table(report), ""]
    for key in ("tool_name_accuracy", "argument_accuracy", "model_text_dropped"):
        lines.append(f"{key:24} {_cell(report.get(key))}")
    return "\n".join(lines)


def compare_reports(reports: list[tuple[str, dict[str, Any]]]) -> str:
    """Saved reports side by side (base vs shipped vs new): one block per kind, one column per report."""
    kinds = [k for k in (*KINDS, "all") if k == "all" or any(k in r.get("kinds", {}) for _, r in reports)]
    width = max(14, *(len(label) + 2 for label, _ in reports))
    lines = []
    for kind in kinds:
        lines.append(f"{kind:28}" + "".join(f"{label:>{width}}" for label, _ in reports))
        for key, label in COLUMNS:
            cells = [(r if kind == "all" else r.get("kinds", {}).get(kind, {})).get(key) for _, r in reports]
            lines.append(f"  {label:26}" + "".join(f"{_cell(c):>{width}}" for c in cells))
        lines.append("")
    return "\n".join(lines).rstrip()
