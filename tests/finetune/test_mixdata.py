"""The training mix leaves out dev customers, dev prompts, eval customers and eval prompts, and keeps only examples in
the one-reply format (the messages the agent sent, the reply to learn last).
"""

from __future__ import annotations

import json

from finetune.mixdata import build, case_prompts, first_user, prompt_key
from finetune.transcripts import Transcript, write_transcripts


def _example(user: str, customer: str | None, conversation: str, *, history: tuple[str, ...] = (),
             target: dict | None = None) -> Transcript:
    msgs = [{"role": "system", "content": "sys"}]
    for past in history:
        msgs += [{"role": "user", "content": past}, {"role": "assistant", "content": f"rendered {past}", "weight": 0}]
    msgs += [{"role": "user", "content": user}, target or {"role": "assistant", "content": ""}]
    meta = {"conversation_id": conversation, "kind": "status", "lang": "en", "target": "empty"}
    if customer:
        meta["customer_id"] = customer
    return Transcript(messages=msgs, meta=meta)


def _old_format(user: str, customer: str) -> Transcript:
    return Transcript(messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": user},
                                {"role": "assistant", "content": "reply 0"}, {"role": "user", "content": "more"},
                                {"role": "assistant", "content": "reply 1"}],
                      meta={"customer_id": customer, "conversation_id": "old"})


def test_prompt_key_folds_case_spaces_and_punctuation():
    assert prompt_key("  Where is my order #W1? ") == prompt_key("where is my order W1") == "where is my order w1"
    assert prompt_key("是的，请继续") == prompt_key("是的,请继续")


def test_mix_leaves_out_dev_and_eval_customers_and_prompts_and_the_old_format(tmp_path):
    dev = [_example("Where is my order?", "c1", "d1"), _example("How big is each segment?", None, "d2")]
    train = [
        _example("cancel it", "c1", "a"),  # a dev customer
        _example("  how big is EACH segment? ", None, "b"),  # a dev conversation's opening prompt
        _example("And the tracking number again", "c2", "c", history=("Where is #W9?",)),  # an eval prompt
        _example("status please", "c3", "e", history=("Give me an overview of our customer segments.",)),
        _example("Tell me about c000150.", None, "f"),  # names an eval customer
        _example("hello", "c000007", "g"),  # an eval customer
        _old_format("question", "c4"),
        _example("List my orders", "c2", "h"), _example("List my orders", "c2", "h"),
        *[_example(f"question {i}", f"c{i + 10}", f"k{i}") for i in range(40)],
    ]
    path = tmp_path / "t.jsonl"
    write_transcripts(train, path)
    prompts = {prompt_key("And the tracking number again?"),
               prompt_key("Give me an overview of our customer segments.")}
    out, report = build([(path, None)], dev, seed=1, eval_prompts=prompts, eval_customers={"c000150", "c000007"})
    assert report["left_out_dev_customer"] == 1 and report["left_out_dev_prompt"] == 1
    assert report["left_out_eval_prompt"] == 2 and report["left_out_eval_customer"] == 2
    assert report["left_out_old_format"] == 1 and report["duplicates_removed"] == 1
    assert report["written"] == len(out) == 41 and report["targets"] == {"empty": 41}
    assert all(first_user(t) not in {"where is my order", "how big is each segment"} for t in out)


def test_sampling_keeps_a_conversations_examples_together(tmp_path):
    rows = [_example(f"q{k} of {c}", f"cust{c}", f"conv{c}") for c in range(10) for k in range(3)]
    path = tmp_path / "t.jsonl"
    write_transcripts(rows, path)
    out, report = build([(path, 4)], [], seed=0)
    assert report["sources"][str(path)] == {"conversations": 4, "examples": 12}
    assert len(out) == 12 and len({t.conversation_id for t in out}) == 4


def test_eval_prompts_come_from_every_case_file(tmp_path):
    from pathlib import Path

    import finetune

    shipped = case_prompts(Path(finetune.__file__).parent.parent / "agent" / "evalcases")
    assert prompt_key("Give me an overview of our customer segments.") in shipped and len(shipped) > 60
    (tmp_path / "cases.jsonl").write_text(json.dumps({"id": "x", "turns": ["Give me an overview of our  segments."]})
                                          + "\n")
    (tmp_path / "conversations.jsonl").write_text(json.dumps(
        {"id": "y", "turns": ["Where is #S1?", {"action": "confirm"}, "And the tracking number again?",
                              {"action": "handoff", "message": "I'd like a person."}]}) + "\n")
    assert case_prompts(tmp_path) == {prompt_key(t) for t in ("Give me an overview of our segments.", "Where is #S1?",
                                                              "And the tracking number again?", "I'd like a person.")}


def test_merge_turns_folds_a_turns_calls_into_one_sequence_with_the_same_targets():
    from finetune.mixdata import is_single_target, merge_turns

    call = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order_details", "arguments": {"order_id": "#W1"}}}]}
    sent = [{"role": "system", "content": "sys"}, {"role": "user", "content": "where is #W1"}]
    first = Transcript(messages=[*sent, dict(call)], meta={"conversation_id": "a", "call": 0, "target": "call"})
    second = Transcript(messages=[*sent, dict(call, weight=0), {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                                  {"role": "assistant", "content": ""}],
                        meta={"conversation_id": "a", "call": 1, "target": "empty"})
    next_turn = Transcript(messages=[*sent, {"role": "assistant", "content": "rendered", "weight": 0},
                                     {"role": "user", "content": "thanks"}, {"role": "assistant", "content": "Bye!"}],
                           meta={"conversation_id": "a", "call": 2, "target": "text"})
    other = Transcript(messages=[*sent, dict(call)], meta={"conversation_id": "b", "call": 0, "target": "call"})
    out, folded = merge_turns([next_turn, second, other, first])
    assert folded == 1 and len(out) == 3
    merged = next(t for t in out if t.meta.get("targets"))
    assert merged.meta["targets"] == ["call", "empty"]
    assert [m.get("weight", 1) for m in merged.messages if m["role"] == "assistant"] == [1, 1]
    assert all(is_single_target(t) for t in out if t is not merged)


def test_a_weighted_draw_takes_whole_unseen_conversations_and_repeats_byte_for_byte(tmp_path, capsys):
    from finetune.mixdata import conversation_ids, draw_conversations

    pools = tmp_path / "pools"
    pools.mkdir()
    lines = []
    for c in range(30):
        kind = "m-journey" if c % 3 == 0 else "status"
        for turn in range(2):
            lines.append(json.dumps({"messages": [{"role": "user", "content": f"c{c} t{turn}"}],
                                     "meta": {"conversation_id": f"conv{c}", "kind": kind, "lang": "en"}}) + "\n")
    (pools / "p.jsonl").write_text("".join(lines))
    (tmp_path / "seen.jsonl").write_text("".join(line for line in lines if '"conv0"' in line or '"conv1"' in line))
    seen = conversation_ids(tmp_path / "seen.jsonl")
    assert seen == {"conv0", "conv1"}

    def draw(out):
        draw_conversations(pools, out, [("p", 8)], {("m-journey", None): 50}, seen, seed=7)
        return (out / "p-sel.jsonl").read_text()

    first, again = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert first == again  # same seed, same bytes
    drawn = [json.loads(line)["meta"] for line in first.splitlines()]
    ids = {m["conversation_id"] for m in drawn}
    assert len(ids) == 8 and not ids & seen
    assert all(sum(m["conversation_id"] == i for m in drawn) == 2 for i in ids)  # whole conversations
    assert sum(m["kind"] == "m-journey" for m in drawn) / len(drawn) > 0.5  # the weight leans the draw
    assert "p 8" in capsys.readouterr().out


def test_a_draw_can_replace_old_tool_schemas_with_the_agents_current_ones(tmp_path):
    from finetune.mixdata import _role_schemas, draw_conversations

    old = {"type": "function", "function": {"name": "cancel_pending_order", "description": "old",
                                            "parameters": {"type": "object", "properties": {}}}}
    gone = {"type": "function", "function": {"name": "no_such_tool_any_more", "parameters": {}}}
    pools = tmp_path / "pools"
    pools.mkdir()
    (pools / "p.jsonl").write_text(json.dumps({
        "messages": [{"role": "user", "content": "cancel"}], "tools": [old, gone],
        "meta": {"conversation_id": "c", "kind": "cancel", "lang": "en", "role": "customer"}}) + "\n")
    draw_conversations(pools, tmp_path / "kept", [("p", 1)], {}, set(), seed=1)
    assert json.loads((tmp_path / "kept" / "p-sel.jsonl").read_text())["tools"] == [old, gone]
    draw_conversations(pools, tmp_path / "now", [("p", 1)], {}, set(), seed=1, current_tools=True)
    tools = json.loads((tmp_path / "now" / "p-sel.jsonl").read_text())["tools"]
    assert tools[0] == _role_schemas()["customer"]["cancel_pending_order"]  # the schema the agent sends today
    assert tools[0]["function"]["description"] != "old"
    assert tools[1] == gone  # a tool the agent no longer has stays as it was
