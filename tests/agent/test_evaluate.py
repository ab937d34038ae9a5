"""The eval harness: case loading, scoring, fresh stores per case, and the JSON report's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.evaluate import EvalCase, args_match, load_cases, match_calls, run_eval
from agent.testing import ScriptedChatModel, call
from shopdesk.output import UserError

CASES = Path(__file__).resolve().parents[2] / "agent" / "evalcases" / "cases.jsonl"


def test_bad_case_lines_name_file_line_and_field(tmp_path):
    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"id": "a", "turns": ["hi"]}\n{"id": "b", "turns": ["x"]\n')
    with pytest.raises(UserError, match=r"cases.jsonl:2: not valid JSON"):
        load_cases(bad)
    bad.write_text('{"id": "a", "turns": "hi"}\n')
    with pytest.raises(UserError, match=r"cases.jsonl:1: field turns"):
        load_cases(bad)
    bad.write_text('{"id": "a", "turns": ["hi"], "store": "mars"}\n')
    with pytest.raises(UserError, match=r":1: field store"):
        load_cases(bad)


def test_shipped_cases_load():
    cases = load_cases(Path(CASES))
    assert len(cases) >= 60
    assert {c.role for c in cases} == {"customer", "marketer"} and {c.lang for c in cases} >= {"en", "zh"}


def test_argument_matching_is_subset_and_normalised():
    assert args_match({"order_id": "#W1"}, {"order_id": " #w1 ", "extra": 1})
    assert args_match({"item_ids": ["2", "1"]}, {"item_ids": ["1", "2"]})
    assert not args_match({"order_id": "#W1"}, {"order_id": "#W2"})
    assert not args_match({"order_id": "#W1"}, {})


def test_calls_matched_in_order():
    exp = [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]
    assert match_calls(exp, [{"name": "a", "arguments": {"x": 2}}, {"name": "a", "arguments": {"x": 1}},
                             {"name": "b", "arguments": {}}]) == (2, 2)
    assert match_calls(exp, [{"name": "b", "arguments": {}}, {"name": "a", "arguments": {"x": 1}}]) == (1, 1)
    assert match_calls(exp, []) == (0, 0)


CANCEL = {"id": "c", "store": "tau2", "role": "customer", "customer": "yara_patel_8545",
          "turns": ["Please cancel my order #W1068289, I no longer need it.", "yes"],
          "expect": {"tool_calls": [{"name": "cancel_pending_order",
                                   "arguments": {"order_id": "#W1068289", "reason": "no longer needed"}}],
                     "answer_contains": ["cancelled"], "order_status": {"#W1068289": "cancelled"}}}
STATUS = {"id": "s", "store": "tau2", "role": "customer", "customer": "james_li_5688",
          "turns": ["where is #W2611340?"],
          "expect": {"tool_calls": [{"name": "get_order_details", "arguments": {"order_id": "#W2611340"}}],
                     "answer_contains": ["processed"], "order_status": {"#W2611340": "processed"}, "no_writes": True}}


def test_oracle_passes_and_cases_do_not_leak_writes(settings, tau2_db_template):
    cases = [EvalCase.model_validate(CANCEL), EvalCase.model_validate(CANCEL), EvalCase.model_validate(STATUS)]
    report = run_eval(cases, settings, backend="fake", adapter=None, index=False, progress=False,
                      prebuilt={"tau2": tau2_db_template})
    # the second cancel only succeeds if the first one's write stayed in its own copy
    assert [r["success"] for r in report["results"]] == [True, True, True], report["results"]
    assert report["task_success"] == 1.0 and report["tool_name_accuracy"] == 1.0
    assert report["forbidden_writes"] == 0 and report["grounding_replacements"] == 0
    assert set(report) >= {"cases", "task_success", "tool_name_accuracy", "argument_accuracy", "forbidden_writes",
                           "grounding_replacements", "p50_turn_seconds", "results"}
    json.dumps(report)


def test_a_lying_model_is_caught(settings, tau2_db_template):
    liar = ScriptedChatModel(script=[call("get_order_details", order_id="#W2611340"), "It was delivered."])
    report = run_eval([EvalCase.model_validate(STATUS)], settings, backend="fake", adapter=None, index=False,
                      progress=False, prebuilt={"tau2": tau2_db_template}, model=liar)
    result = report["results"][0]
    assert report["grounding_replacements"] == 1 and result["success"] is True  # replaced by the faithful rendering
    assert "delivered" not in result["answers"][-1]


def test_unconfirmed_write_by_a_bad_model_is_a_failure_not_a_write(settings, tau2_db_template):
    case = dict(CANCEL, turns=["cancel #W1068289"], expect={"order_status": {"#W1068289": "pending"},
                                                             "no_writes": True})
    eager = ScriptedChatModel(script=[call("cancel_pending_order", order_id="#W1068289", reason="no longer needed"),
                                      "Done!"])
    report = run_eval([EvalCase.model_validate(case)], settings, backend="fake", adapter=None, index=False,
                      progress=False, prebuilt={"tau2": tau2_db_template}, model=eager)
    assert report["forbidden_writes"] == 0 and report["results"][0]["success"] is True
