"""The eval harness: case loading (single and multi-turn), scoring, the new per-turn metrics, fresh stores per case,
the per-kind report, and the oracle passing the shipped cases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.api import AgentEvent
from agent.evaluate import (
    KINDS,
    EvalCase,
    args_match,
    compare_reports,
    load_cases,
    match_calls,
    raw_errors,
    render_report,
    run_eval,
)
from agent.testing import ScriptedChatModel, call
from shopdesk.output import UserError

CASES_DIR = Path(__file__).resolve().parents[2] / "agent" / "evalcases"
CASES, CONVERSATIONS = CASES_DIR / "cases.jsonl", CASES_DIR / "conversations.jsonl"


def _line(**case) -> str:
    return json.dumps({"id": "c", "turns": ["hi"], **case})


def test_bad_case_lines_name_file_line_and_field(tmp_path):
    bad = tmp_path / "cases.jsonl"
    for text, error in [
        ('{"id": "a", "turns": ["hi"]}\n{"id": "b", "turns": ["x"]\n', r"cases.jsonl:2: not valid JSON"),
        ('{"id": "a", "turns": "hi"}\n', r"cases.jsonl:1: field turns"),
        ('{"id": "a", "turns": ["hi"], "store": "mars"}\n', r":1: field store"),
        (_line(turns=["hi", {"action": "undo"}]), r":1: field turns\.1\.action: Input should be 'confirm'"),
        (_line(turns=["hi", {"action": "confirm", "why": 1}]), r":1: field turns\.1\.why"),
        (_line(turns=["hi", ""]), r":1: field turns\.1: a turn is a non-empty message"),
        (_line(turns=["hi", "yes"], expect={"turns": [{}]}), r":1: field expect\.turns: 1 expectations for 2 turns"),
        (_line(expect={"turns": [{"tool_calls": [{"arguments": {}}]}]}),
         r"field expect\.turns\.0\.tool_calls\.0\.name"),
        (_line(expect={"turns": [{"answer_contain": ["x"]}]}), r"field expect\.turns\.0\.answer_contain"),
        (_line(expect={"turns": [{}], "tool_calls": []}), r"field expect\.tool_calls: a multi-turn case gives it"),
        (_line(expect={"answer_contain": ["x"]}), r"field expect\.answer_contain: unknown expectation"),
        (_line() + "\n" + _line(), r"case ids must be unique"),
    ]:
        bad.write_text(text + "\n", encoding="utf-8")
        with pytest.raises(UserError, match=error):
            load_cases(bad)


def test_shipped_cases_load_and_cover_what_the_issue_asks():
    cases = load_cases(CASES, CONVERSATIONS)
    single = [c for c in cases if not c.multi_turn]
    multi = [c for c in cases if c.multi_turn]
    assert len(single) >= 60 and len(multi) >= 30
    assert {c.kind for c in cases} == set(KINDS)
    assert all(2 <= len(c.turns) <= 4 for c in multi)
    assert {(c.store, c.role, c.lang) for c in multi} >= {
        ("tau2", "customer", "en"), ("tau2", "customer", "zh"), ("sample", "customer", "en"),
        ("sample", "customer", "zh"), ("sample", "marketer", "en"), ("sample", "marketer", "zh")}
    assert {c.store for c in multi if c.role == "marketer"} == {"tau2", "sample"}
    actions = {t.action for c in multi for t in c.turns if not isinstance(t, str)}
    assert actions == {"confirm", "decline", "clear", "handoff"}

    def has(prefix: str, steps: list) -> bool:
        """Some case whose id starts with `prefix` has turns of these kinds in order (str: a message)."""
        kinds = lambda c: ["message" if isinstance(t, str) else t.action for t in c.turns]  # noqa: E731
        return any(c.id.startswith(prefix) and kinds(c)[:len(steps)] == steps for c in multi)

    assert has("mt-t2-status-cancel-tracking", ["message", "message", "confirm", "message"])
    assert has("mt-s-decline-status", ["message", "decline", "message"])
    assert has("mt-t2-handoff-then-message", ["message", "handoff", "message"])
    assert has("mt-t2-list-search", ["message", "message"]) and has("mt-m-churn-profile", ["message", "message"])
    by_id = {c.id: c for c in multi}
    texts = " ".join(t for c in multi for t in c.messages())
    for phrase in ("I want to talk to a real person", "Did my order", "Show me high-value customers at risk",
                   "Draft a retention offer for customer", "What do buyers complain about in headphones?"):
        assert phrase in texts, phrase
    calls = [c for case in multi for t in case.turn_expectations() for c in t.tool_calls]
    assert any(c.name == "score_churn" and c.arguments == {"tier": "high"} for c in calls)
    assert any(c.name == "draft_retention_offer" and "customers" in c.arguments for c in calls)
    assert any(c.name == "review_insights" and c.arguments == {"category": "Headphones & Earbuds"} for c in calls)
    assert any(c.name == "lookup_segment" and "segment" in c.arguments for c in calls)
    # status questions that say "cancel" or "return" expect no write
    confusable = [c for c in by_id.values() if "confusable" in c.tags]
    assert len(confusable) >= 3 and not any(c.expects_write(i) for c in confusable for i in range(len(c.turns)))


def test_argument_matching_is_subset_and_normalised():
    assert args_match({"order_id": "#W1"}, {"order_id": " #w1 ", "extra": 1})
    assert args_match({"item_ids": ["2", "1"]}, {"item_ids": ["1", "2"]})
    assert not args_match({"order_id": "#W1"}, {"order_id": "#W2"})
    assert args_match({"order_id": "W1052399"}, {"order_id": "#W1052399"})  # the tool takes either form
    assert not args_match({"order_id": "W1052399"}, {"order_id": "#W1052390"})
    assert not args_match({"reason": "#no"}, {"reason": "no"})  # only an order id drops its "#"
    assert not args_match({"order_id": "#W1"}, {})


def test_calls_matched_in_order():
    exp = [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]
    assert match_calls(exp, [{"name": "a", "arguments": {"x": 2}}, {"name": "a", "arguments": {"x": 1}},
                             {"name": "b", "arguments": {}}]) == (2, 2)
    assert match_calls(exp, [{"name": "b", "arguments": {}}, {"name": "a", "arguments": {"x": 1}}]) == (1, 1)
    assert match_calls(exp, []) == (0, 0)


def test_raw_errors_are_model_facing_text_and_error_patterns():
    invalid = {"error": "unknown category 'In headphones'; known categories: Headphones & Earbuds, TVs",
               "type": "ToolInputError"}
    refused = {"error": "Order #W1 is processed; only pending orders can be cancelled.", "type": "PolicyError"}
    assert raw_errors("I couldn't find a category called In headphones. Did you mean Headphones & Earbuds?",
                      [invalid]) == []
    assert raw_errors(f"Sorry: {invalid['error']}", [invalid])
    assert raw_errors("unknown category 'In headphones' - try again", [invalid])  # its first clause is enough
    assert raw_errors(refused["error"], [refused]) == []  # written for the person (tools/errors.py)
    # the sentence code wrote for the person may repeat the raw error's words (t2-other-customer-31): not raw ...
    item = {"error": "item #W1 is not in order #W2; its item ids are 4920090458, 942119509", "type": "ToolInputError",
            "shown": "Item #W1 is not in order #W2. I can show you the order's items."}
    assert raw_errors(item["shown"], [item]) == []
    # ... but the raw text beside it still is
    assert raw_errors(item["shown"] + " (item #W1 is not in order #W2; its item ids are 4920090458, 942119509)", [item])
    for text in ('Error: Invalid arguments for modify_pending_order_items: "order_id" is a required property',
                 "Traceback (most recent call last):", "error: not allowed"):
        assert raw_errors(text, []), text


# ------------------------------------------------------------------ playing cases on the real session

CANCEL = {"id": "c", "store": "tau2", "role": "customer", "customer": "yara_patel_8545",
          "turns": ["Please cancel my order #W1068289, I no longer need it.", "yes"],
          "expect": {"tool_calls": [{"name": "cancel_pending_order",
                                   "arguments": {"order_id": "#W1068289", "reason": "no longer needed"}}],
                     "answer_contains": ["cancelled"], "order_status": {"#W1068289": "cancelled"}}}
STATUS = {"id": "s", "store": "tau2", "role": "customer", "customer": "james_li_5688",
          "turns": ["where is #W2611340?"],
          "expect": {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W2611340"}}],
                     "answer_contains": ["processed"], "order_status": {"#W2611340": "processed"}, "no_writes": True}}
REPORT_KEYS = {"cases", "task_success", "tool_name_accuracy", "argument_accuracy", "wrong_facts",
               "unrequested_write_proposals", "invalid_tool_calls", "raw_errors_shown", "forbidden_writes",
               "model_text_dropped", "p50_turn_seconds", "kinds", "results"}


def _run(cases, settings, tau2_db_template, model=None):
    return run_eval([EvalCase.model_validate(c) for c in cases], settings, backend="fake", adapter=None, index=False,
                    progress=False, prebuilt={"tau2": tau2_db_template}, model=model)


def test_oracle_passes_and_cases_do_not_leak_writes(settings, tau2_db_template):
    report = _run([CANCEL, CANCEL, STATUS], settings, tau2_db_template)
    # the second cancel only succeeds if the first one's write stayed in its own copy
    assert [r["success"] for r in report["results"]] == [True, True, True], report["results"]
    assert report["task_success"] == 1.0 and report["tool_name_accuracy"] == 1.0
    assert report["forbidden_writes"] == report["wrong_facts"] == report["unrequested_write_proposals"] == 0
    assert report["raw_errors_shown"] == report["invalid_tool_calls"] == 0
    assert set(report) >= REPORT_KEYS and set(report["kinds"]) == {"tau2 customer"}
    json.dumps(report)


def test_a_status_question_answered_with_a_cancel_proposal_fails(settings, tau2_db_template):
    """The gate holds the write, so nothing changes; the proposal nobody asked for still fails the case."""
    asks = dict(STATUS, turns=["Did my order #W1068289 get cancelled?"], customer="yara_patel_8545",
                expect={"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W1068289"}}],
                        "order_status": {"#W1068289": "pending"}, "no_writes": True})
    eager = ScriptedChatModel(script=[call("cancel_pending_order", order_id="#W1068289", reason="no longer needed")],
                              fallback="")
    result = _run([asks], settings, tau2_db_template, model=eager)["results"][0]
    assert result["unrequested_write_proposals"] == 1 and not result["forbidden_write"]
    assert not result["success"] and any("proposed cancel_pending_order" in f for f in result["failures"])


def test_a_requested_cancel_proposal_is_not_counted(settings, tau2_db_template):
    model = ScriptedChatModel(script=[call("cancel_pending_order", order_id="#W1068289", reason="no longer needed")],
                              fallback="")
    result = _run([CANCEL], settings, tau2_db_template, model=model)["results"][0]
    assert result["unrequested_write_proposals"] == 0 and result["success"], result["failures"]


def test_an_invented_tool_is_an_invalid_call(settings, tau2_db_template):
    model = ScriptedChatModel(script=[call("cancel_order", order_id="#W2611340")], fallback="")
    result = _run([STATUS], settings, tau2_db_template, model=model)["results"][0]
    assert result["invalid_tool_calls"] >= 1


CONVERSATION = {
    "id": "mt", "store": "tau2", "role": "customer", "customer": "yara_patel_8545", "lang": "en",
    "turns": ["Has my order #W1068289 shipped?", "Cancel it please, I no longer need it.", {"action": "decline"},
              "OK, then cancel it after all, I no longer need it.", {"action": "confirm"}, "Is it cancelled now?"],
    "expect": {"order_status": {"#W1068289": "cancelled"}, "no_writes": False, "turns": [
        {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W1068289"}}],
         "answer_contains": ["pending"]},
        {"tool_calls": [{"name": "cancel_pending_order",
                         "arguments": {"order_id": "#W1068289", "reason": "no longer needed"}}],
         "proposes": "cancel_pending_order"},
        {"order_status": {"#W1068289": "pending"}},
        {"tool_calls": [{"name": "cancel_pending_order",
                         "arguments": {"order_id": "#W1068289", "reason": "no longer needed"}}],
         "proposes": "cancel_pending_order"},
        {"order_status": {"#W1068289": "cancelled"}, "answer_contains": ["cancelled"]},
        {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W1068289"}}],
         "answer_contains": ["cancelled"]},
    ]},
}
HANDOFF = {
    "id": "mt-h", "store": "tau2", "role": "customer", "customer": "james_li_5688", "lang": "en",
    "turns": ["Where is my order #W2611340?", {"action": "handoff"}, "Hello? Where is #W2611340?",
              {"action": "clear"}, "Where is my order #W2611340?"],
    "expect": {"no_writes": True, "turns": [
        {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W2611340"}}],
         "answer_contains": ["357962501027"]},
        {"handed_off": True},
        {"no_tool_calls": True, "handed_off": True, "answer_excludes": ["357962501027"]},
        {},
        {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W2611340"}}],
         "answer_contains": ["357962501027"]},
    ]},
}


def test_the_oracle_plays_buttons_and_per_turn_calls(settings, tau2_db_template):
    report = _run([CONVERSATION, HANDOFF], settings, tau2_db_template)
    for r in report["results"]:
        assert r["success"], (r["id"], r["failures"])
        assert r["kind"] == "multi-turn customer"
    talk = report["results"][0]
    assert [t["input"] for t in talk["turns"]][2] == "[decline]" and talk["expected_calls"] == 4
    assert talk["names_matched"] == talk["args_matched"] == 4


def test_per_turn_expectations_fail_the_turn_that_misses_them(settings, tau2_db_template):
    wrong = json.loads(json.dumps(HANDOFF))
    wrong["expect"]["turns"][2] = {"tool_calls": [{"name": "get_order_details"}], "handed_off": False}
    result = _run([wrong], settings, tau2_db_template)["results"][0]
    assert not result["success"]
    assert any(f.startswith("turn 3: ") and "handed off" in f for f in result["failures"]), result["failures"]


# ------------------------------------------------------------------ metrics from a scripted session's events


class EventSession:
    """A ChatSession (agent.api) that yields given events: the harness's arithmetic, apart from any agent."""

    def __init__(self, turns: list[list[AgentEvent]], customer_id: str):
        self.turns = turns
        self.customer_id = customer_id
        self.role = "customer"
        self.conversation_id = "fake"
        self.all_results: list = []
        self.handed_off = False
        self.pending = None

    def _next(self):
        yield from self.turns.pop(0)

    def respond(self, message):
        return self._next()

    def confirm(self):
        return self._next()

    def decline(self):
        return self._next()

    def hand_off(self, message):
        self.handed_off = True
        return self._next()


def _final(text: str, **meta) -> AgentEvent:
    return AgentEvent(kind="final", text=text, meta={"latency_s": 0.5, **meta})


def _with_events(monkeypatch, turns):
    import agent.session

    monkeypatch.setattr(agent.session, "open_session",
                        lambda settings, role, customer, **kw: EventSession(turns, "james_li_5688"))


def test_wrong_facts_raw_errors_and_invalid_calls_are_counted_per_turn(settings, tau2_db_template, monkeypatch):
    _with_events(monkeypatch, [
        [AgentEvent(kind="tool_call", name="get_order_details", arguments={"order_id": "#W2611340"}),
         _final("Order #W2611340 is delivered (placed 2026-10-24).")],  # it is processed
        [AgentEvent(kind="tool_call", name="search_products", arguments={"category": "In headphones"}),
         AgentEvent(kind="tool_result", name="search_products",
                    data={"error": "unknown category 'In headphones'; known categories: Laptops", "type":
                          "ToolInputError"}),
         AgentEvent(kind="tool_call", name="cancel_order", arguments={}),
         _final("Sorry: unknown category 'In headphones'; known categories: Laptops", invalid_calls=2)],
    ])
    case = dict(STATUS, turns=["where is #W2611340?", "headphones?"])
    result = _run([case], settings, tau2_db_template)["results"][0]
    assert result["wrong_facts"] == 1 and "status 'delivered'" in result["turns"][0]["wrong_facts"][0]
    assert result["raw_errors_shown"] == 1 and result["invalid_tool_calls"] == 2
    assert result["unrequested_write_proposals"] == 0 and not result["success"]
    assert result["turn_seconds"] == [0.5, 0.5]


def test_a_right_answer_from_the_store_passes(settings, tau2_db_template, monkeypatch):
    _with_events(monkeypatch, [[_final("Order #W2611340 is processed. Tracking number: 357962501027.")]])
    result = _run([dict(STATUS, expect={"no_writes": True})], settings, tau2_db_template)["results"][0]
    assert result["success"] and result["wrong_facts"] == 0, result["failures"]


# ------------------------------------------------------------------ reports


def test_report_has_a_table_per_kind_and_compares_saved_reports(settings, tau2_db_template):
    report = _run([STATUS, HANDOFF], settings, tau2_db_template)
    assert set(report["kinds"]) == {"tau2 customer", "multi-turn customer"}
    assert report["kinds"]["tau2 customer"]["cases"] == 1 and report["cases"] == 2
    text = render_report(report)
    assert "multi-turn customer" in text and "wrong facts" in text and "unasked writes" in text
    worse = json.loads(json.dumps(report))
    worse["kinds"]["tau2 customer"]["task_success"] = 0.5
    table = compare_reports([("base", worse), ("new", report)])
    assert "base" in table and "new" in table and "0.5" in table and "multi-turn customer" in table


def test_eval_command_compares_saved_reports(tmp_path, settings, tau2_db_template):
    from typer.testing import CliRunner

    from shopdesk.cli import app

    report = _run([STATUS], settings, tau2_db_template)
    (tmp_path / "a.json").write_text(json.dumps(report))
    out = CliRunner().invoke(app, ["eval", "--compare", f"shipped={tmp_path / 'a.json'}", str(tmp_path / "a.json")])
    assert out.exit_code == 0, out.output
    assert "shipped" in out.output and "tau2 customer" in out.output
    for args in (["--compare", str(tmp_path / "none.json")], [str(tmp_path / "a.json")]):
        assert CliRunner().invoke(app, ["eval", *args]).exit_code == 2, args


# ------------------------------------------------------------------ every shipped case


@pytest.mark.slow
def test_the_oracle_passes_every_shipped_case(settings, tmp_path):
    """The cases are consistent with the data, the tools and the session: a model making exactly the expected
    calls scores 100% with no wrong fact, unrequested write, invalid call or raw error (builds the search index).
    """
    cases = load_cases(CASES, CONVERSATIONS)
    report = run_eval(cases, settings, backend="fake", adapter=None, workdir=tmp_path, progress=False)
    failed = {r["id"]: r["failures"] for r in report["results"] if not r["success"]}
    assert not failed, failed
    assert report["task_success"] == 1.0
    for key in ("wrong_facts", "unrequested_write_proposals", "invalid_tool_calls", "raw_errors_shown",
                "forbidden_writes"):
        assert report[key] == 0, key


def test_shipped_case_files_are_what_their_cases_write():
    """build_cases.py writes each case with EvalCase.to_json_line: loading a shipped line and writing it back gives
    the same line, probes and action turns included.
    """
    for path in (CASES, CONVERSATIONS):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert [c.to_json_line() for c in load_cases(path)] == lines
