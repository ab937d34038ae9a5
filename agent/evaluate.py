"""The eval harness: play scripted conversations against the agent, each on a fresh copy of its store, and score them.

    shopdesk eval --cases agent/evalcases/cases.jsonl --store tau2 --backend local --adapter none --json
    shopdesk eval --cases agent/evalcases/cases.jsonl --backend fake      # oracle: plays each case's expected calls

Case format (one JSON object per line): see issue 5 / agent/evalcases/build_cases.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel

from shopdesk.output import UserError
from shopdesk.settings import Settings

STORES = ("tau2", "sample")
SAMPLE_CUSTOMERS, SAMPLE_SEED = 200, 0  # the sample shop the cases were written against


class EvalCase(BaseModel):
    id: str
    store: str = "tau2"
    role: str = "customer"
    customer: str | None = None
    lang: str = "en"
    tags: list[str] = []
    turns: list[str]
    expect: dict[str, Any] = {}


def load_cases(path: Path) -> list[EvalCase]:
    """Cases from a JSONL file; a bad line is reported with its file and line number."""
    if not path.is_file():
        raise UserError(f"cases file {path} does not exist")
    cases: list[EvalCase] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = EvalCase.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        except ValueError as exc:
            first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ("?",), "msg": str(exc)}
            raise UserError(f"{path}:{n}: field {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        if case.store not in STORES:
            raise UserError(f"{path}:{n}: field store: expected one of {', '.join(STORES)}, got {case.store!r}")
        if case.role not in ("customer", "marketer"):
            raise UserError(f"{path}:{n}: field role: expected customer or marketer, got {case.role!r}")
        if not case.turns:
            raise UserError(f"{path}:{n}: field turns: at least one turn is needed")
        cases.append(case)
    return cases


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
                    from store.sample import build_sample

                    build_sample(store, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED)
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
    """A hash of everything a support conversation must not change without confirmation."""
    from sqlalchemy import select

    from store.models import Order, OrderItem, Payment, PaymentMethod

    h = hashlib.sha256()
    with store.read() as s:
        for model, order in ((Order, Order.id), (OrderItem, OrderItem.id), (Payment, Payment.id),
                             (PaymentMethod, PaymentMethod.id)):
            for row in s.scalars(select(model).order_by(order)):
                values = {c.key: getattr(row, c.key) for c in model.__table__.columns}
                values.pop("updated_at", None)
                h.update(json.dumps(values, sort_keys=True, default=str).encode())
    return h.hexdigest()


def order_statuses(store, ids: list[str]) -> dict[str, str | None]:
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
    """Expected arguments are a subset of the actual ones (strings compared case- and space-insensitively)."""
    actual = actual or {}
    return all(k in actual and _norm(actual[k]) == _norm(v) for k, v in expected.items())


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
class CaseResult:
    id: str
    store: str
    role: str
    lang: str
    success: bool
    failures: list[str] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    expected_calls: int = 0
    names_matched: int = 0
    args_matched: int = 0
    grounding_replacements: int = 0
    grounding_problems: list[str] = field(default_factory=list)
    forbidden_write: bool = False
    turn_seconds: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    error: str | None = None


def run_case(case: EvalCase, templates: StoreTemplates, model_for: Callable[[EvalCase], BaseChatModel]) -> CaseResult:
    from agent.session import open_session

    exp = case.expect
    result = CaseResult(id=case.id, store=case.store, role=case.role, lang=case.lang, success=False,
                        expected_calls=len(exp.get("tool_calls", [])))
    with templates.fresh(case.store, case.id) as (store, settings):
        before = store_fingerprint(store)
        try:
            session = open_session(settings, case.role, case.customer, model=model_for(case), store=store,
                                   channel="eval")
            for turn in case.turns:
                for event in session.respond(turn):
                    if event.kind == "tool_call" and not event.meta.get("confirmed"):
                        result.tool_calls.append({"name": event.name, "arguments": event.arguments})
                    elif event.kind == "final":
                        result.answers.append(event.text)
                        result.turn_seconds.append(event.meta.get("latency_s", 0.0))
                        result.grounding_replacements += int(bool(event.meta.get("grounding_replaced")))
                        result.grounding_problems += event.meta.get("grounding_problems", [])
                    elif event.kind == "error":
                        result.answers.append(event.text)
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop the run; it is reported
            result.error = f"{type(exc).__name__}: {exc}"
            result.failures.append(f"crashed: {result.error}")
        changed = store_fingerprint(store) != before
        statuses = order_statuses(store, list(exp.get("order_status", {})))
    result.names_matched, result.args_matched = match_calls(exp.get("tool_calls", []), result.tool_calls)
    if result.names_matched < result.expected_calls:
        result.failures.append("missing expected tool call(s)")
    elif result.args_matched < result.expected_calls:
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
    result.success = not result.failures
    return result


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    expected = sum(r.expected_calls for r in results)
    turns = [t for r in results for t in r.turn_seconds]
    return {
        "cases": len(results),
        "task_success": round(sum(r.success for r in results) / len(results), 4) if results else 0.0,
        "tool_name_accuracy": round(sum(r.names_matched for r in results) / expected, 4) if expected else None,
        "argument_accuracy": round(sum(r.args_matched for r in results) / expected, 4) if expected else None,
        "forbidden_writes": sum(r.forbidden_write for r in results),
        "grounding_replacements": sum(r.grounding_replacements for r in results),
        "p50_turn_seconds": round(statistics.median(turns), 3) if turns else None,
        "results": [r.__dict__ for r in results],
    }


# -- models -----------------------------------------------------------------------------------------------------


def oracle_model(case: EvalCase) -> BaseChatModel:
    """A scripted model that makes the case's expected calls and then repeats the last tool result: it checks the
    harness, the cases and the tools end to end (what a perfect model would score)."""
    from agent.testing import ScriptedChatModel, calls

    expected = [(c["name"], c.get("arguments", {})) for c in case.expect.get("tool_calls", [])]

    def answer(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(content=last.content if not last.content.startswith("error:") else
                             last.content.removeprefix("error: ").split(". Call the tool")[0])
        return AIMessage(content="Could you tell me more about what you need?")

    def first(messages: list[BaseMessage]) -> AIMessage:
        # expected arguments are a subset: fill the other required string arguments (a handoff summary) from the
        # customer's words, as a model would
        schemas = {t["function"]["name"]: t["function"]["parameters"] for t in model.requests[-1]["tools"] or []}
        user = next((m.content for m in reversed(messages) if m.type == "human"), "")
        filled = []
        for name, args in expected:
            params = schemas.get(name, {})
            extra = {k: user for k in params.get("required", []) if k not in args
                     and params.get("properties", {}).get(k, {}).get("type") == "string"}
            filled.append((name, {**extra, **args}))
        return calls(*filled)

    model = ScriptedChatModel(script=[first] if expected else [], fallback=answer)
    return model


def run_eval(cases: list[EvalCase], settings: Settings, *, backend: str, adapter: str | None,
             workdir: Path | None = None, progress: bool = True, index: bool = True,
             prebuilt: dict[str, Path] | None = None, model: BaseChatModel | None = None) -> dict[str, Any]:
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


def render_report(report: dict[str, Any]) -> str:
    lines = [f"{'case':34} {'ok':3} {'calls':>5} {'args':>5} failures"]
    for r in report["results"]:
        lines.append(f"{r['id']:34} {'yes' if r['success'] else 'no':3} {r['names_matched']}/{r['expected_calls']:<3} "
                     f"{r['args_matched']}/{r['expected_calls']:<3} {'; '.join(r['failures'])[:90]}")
    lines.append("")
    for key in ("cases", "task_success", "tool_name_accuracy", "argument_accuracy", "forbidden_writes",
                "grounding_replacements", "p50_turn_seconds"):
        lines.append(f"{key:24} {report[key]}")
    return "\n".join(lines)
