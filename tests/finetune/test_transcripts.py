"""Transcript formats: OpenAI chat and ShareGPT read into one form; broken files give errors naming where and what."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from finetune.transcripts import TranscriptError, load_transcripts, parse_row, validate_file, write_transcripts

OPENAI = {
    "messages": [
        {"role": "system", "content": "You are the shop's assistant."},
        {"role": "user", "content": "Where is #W2611340?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_order_details", "arguments": "{\"order_id\": \"#W2611340\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Order #W2611340 is processed."},
        {"role": "assistant", "content": "It is processed."},
    ],
    "meta": {"customer_id": "james_li_5688"},
}
SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "You are the shop's assistant."},
        {"from": "human", "value": "Where is #W2611340?"},
        {"from": "function_call",
         "value": "{\"name\": \"get_order_details\", \"arguments\": {\"order_id\": \"#W2611340\"}}"},
        {"from": "observation", "value": "Order #W2611340 is processed."},
        {"from": "gpt", "value": "It is processed."},
    ],
    "tools": "[]",
}


def _write(tmp_path, rows) -> str:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_both_formats_read_to_the_same_messages():
    a, b = parse_row(OPENAI), parse_row(SHAREGPT)
    assert [m["role"] for m in a.messages] == [m["role"] for m in b.messages]
    assert a.messages[2]["tool_calls"][0]["function"] == b.messages[2]["tool_calls"][0]["function"] == {
        "name": "get_order_details", "arguments": {"order_id": "#W2611340"}}
    assert b.messages[3]["tool_call_id"] == b.messages[2]["tool_calls"][0]["id"]
    assert a.customer_id == "james_li_5688"


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_write_and_read_back(tmp_path, fmt):
    t = parse_row(OPENAI)
    write_transcripts([t], tmp_path / "out.jsonl", fmt)
    (back,) = load_transcripts(tmp_path / "out.jsonl")
    assert [(m["role"], m["content"]) for m in back.messages] == [(m["role"], m["content"]) for m in t.messages]
    assert back.messages[2]["tool_calls"][0]["function"] == t.messages[2]["tool_calls"][0]["function"]


def _broken(path_rows, tmp_path):
    with pytest.raises(TranscriptError) as info:
        load_transcripts(_write(tmp_path, path_rows))
    return info.value


def test_invalid_json_names_file_and_line(tmp_path):
    err = _broken([OPENAI, '{"messages": [', OPENAI], tmp_path)
    assert err.line == 2 and "t.jsonl:2" in str(err) and "not valid JSON" in str(err)


def test_unknown_role_names_message_and_field(tmp_path):
    row = json.loads(json.dumps(OPENAI))
    row["messages"][1]["role"] = "customer"
    err = _broken([row], tmp_path)
    assert (err.line, err.index, err.field) == (1, 1, "role")
    assert "customer" in str(err) and "message 1" in str(err)


def test_bad_arguments_json(tmp_path):
    row = json.loads(json.dumps(OPENAI))
    row["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{order_id: 1"
    err = _broken([OPENAI, row], tmp_path)
    assert (err.line, err.index, err.field) == (2, 2, "tool_calls[0].function.arguments")


def test_tool_result_without_call(tmp_path):
    row = json.loads(json.dumps(OPENAI))
    row["messages"][3]["tool_call_id"] = "nope"
    err = _broken([row], tmp_path)
    assert (err.index, err.field) == (3, "tool_call_id") and "nope" in str(err)


def test_sharegpt_unknown_speaker_and_orphan_observation(tmp_path):
    row = json.loads(json.dumps(SHAREGPT))
    row["conversations"][1]["from"] = "bot"
    err = _broken([row], tmp_path)
    assert (err.index, err.field) == (1, "from")
    row = json.loads(json.dumps(SHAREGPT))
    del row["conversations"][2]
    err = _broken([row], tmp_path)
    assert err.index == 2 and "observation" in str(err)


def test_no_assistant_turn_and_missing_keys(tmp_path):
    err = _broken([{"messages": [{"role": "user", "content": "hi"}]}], tmp_path)
    assert "no assistant message" in str(err)
    err = _broken([{"dialogue": []}], tmp_path)
    assert "neither 'messages'" in str(err)


def test_validate_lists_every_problem_and_cli_exits_2(tmp_path):
    from shopdesk.cli import app

    bad = json.loads(json.dumps(OPENAI))
    bad["messages"][2]["tool_calls"][0]["function"]["name"] = ""
    path = _write(tmp_path, [OPENAI, bad, "not json", SHAREGPT])
    report = validate_file(path)
    assert report["valid"] == 2 and report["invalid"] == 2
    assert any(":2: message 2: field 'tool_calls[0].function.name'" in e for e in report["errors"])
    result = CliRunner().invoke(app, ["transcripts", "validate", path])
    assert result.exit_code == 2
    assert "2 valid, 2 invalid" in result.output


def test_export_logged_conversations(sqlite_store, tmp_path, monkeypatch):
    """The agent's turn log (Conversation/Message rows) comes out as valid transcripts, in both formats."""
    from datetime import datetime

    from shopdesk.cli import app
    from store.models import Conversation, Customer, Message

    now = datetime(2026, 11, 1)
    with sqlite_store.transaction() as s:
        s.add(Customer(id="c1", first_name="Ann", email="ann@example.com"))
        s.flush()
        s.add(Conversation(id="conv1", role="customer", customer_id="c1", started_at=now, channel="chat"))
        s.flush()
        s.add_all([
            Message(conversation_id="conv1", seq=0, role="user", content="Where is #W1?", created_at=now),
            Message(conversation_id="conv1", seq=1, role="assistant", content="", created_at=now,
                    tool_calls=[{"id": "k1", "name": "get_order_details", "arguments": {"order_id": "#W1"}}]),
            Message(conversation_id="conv1", seq=2, role="tool", content="Order #W1 is pending.", tool_call_id="k1",
                    name="get_order_details", created_at=now),
            Message(conversation_id="conv1", seq=3, role="assistant", content="It is pending.", created_at=now),
        ])
    monkeypatch.setenv("SHOPDESK_DATABASE_URL", sqlite_store.url)
    for fmt in ("openai", "sharegpt"):
        out = tmp_path / f"export-{fmt}.jsonl"
        result = CliRunner().invoke(app, ["transcripts", "export", "--out", str(out), "--format", fmt])
        assert result.exit_code == 0, result.output
        (t,) = load_transcripts(out)
        assert t.customer_id == "c1" and t.conversation_id == "conv1"
        assert t.messages[1]["tool_calls"][0]["function"] == {"name": "get_order_details",
                                                              "arguments": {"order_id": "#W1"}}
        assert t.messages[-1]["content"] == "It is pending."


def test_an_empty_reply_is_learnable_only_as_the_last_message():
    from finetune.transcripts import TranscriptError, parse_row

    head = [{"role": "user", "content": "hi"}]
    t = parse_row({"messages": [*head, {"role": "assistant", "content": ""}]})
    assert t.messages[-1] == {"role": "assistant", "content": ""}
    assert parse_row(t.to_sharegpt()).messages[-1] == {"role": "assistant", "content": ""}
    for bad in ([*head, {"role": "assistant", "content": ""}, {"role": "user", "content": "more"},
                 {"role": "assistant", "content": "ok"}],
                [*head, {"role": "assistant", "content": "", "weight": 0}]):
        with pytest.raises(TranscriptError, match="neither content nor tool_calls"):
            parse_row({"messages": bad})
