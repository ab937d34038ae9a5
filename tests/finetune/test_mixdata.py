"""The training mix leaves out dev customers and dev prompts, and cuts conversations to one or two learned turns."""

from __future__ import annotations

import json

from finetune.mixdata import build, case_prompts, first_user
from finetune.transcripts import Transcript, write_transcripts


def _conv(user: str, customer: str | None, turns: int = 3) -> Transcript:
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": user}]
    for i in range(turns):
        msgs += [{"role": "assistant", "content": f"reply {i} to {user}"}, {"role": "user", "content": f"more {i}"}]
    return Transcript(messages=msgs[:-1], meta={"customer_id": customer} if customer else {})


def test_mix_excludes_dev_customers_and_prompts_and_truncates(tmp_path):
    dev = [_conv("Where is my order?", "c1"), _conv("How big is each segment?", None)]
    train = [_conv("cancel it", "c1"), _conv("  how big is EACH segment? ", None), _conv("List my orders", "c2"),
             _conv("List my orders", "c2"), *[_conv(f"question {i}", f"c{i + 10}") for i in range(40)]]
    path = tmp_path / "t.jsonl"
    write_transcripts(train, path)
    out, report = build([(path, None)], dev, first_turn_share=0.5, seed=1)
    assert report["left_out_dev_customer"] == 1 and report["left_out_dev_prompt"] == 1
    assert report["duplicates_removed"] == 1 and report["written"] == len(out) == 41
    assert all(first_user(t) not in {"where is my order?", "how big is each segment?"} for t in out)
    assistant_turns = sorted({sum(m["role"] == "assistant" for m in t.messages) for t in out})
    assert assistant_turns == [1, 2]
    assert all(t.messages[-1]["role"] == "assistant" for t in out)
    sampled, report = build([(path, 5)], dev, first_turn_share=1.0, seed=1)
    assert report["sources"][str(path)] == 5 and all(len(t.messages) == 3 for t in sampled)


def test_mix_leaves_out_eval_case_prompts(tmp_path):
    from pathlib import Path

    import finetune

    shipped = case_prompts(Path(finetune.__file__).parent.parent / "agent" / "evalcases" / "cases.jsonl")
    assert "give me an overview of our customer segments." in shipped and len(shipped) > 60
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "x", "turns": ["Give me an overview of our  segments."]}) + "\n")
    path = tmp_path / "t.jsonl"
    write_transcripts([_conv("give me an overview of our segments.", None), _conv("other", None)], path)
    out, report = build([(path, None)], [], first_turn_share=1.0, seed=0, eval_prompts=case_prompts(cases))
    assert report["left_out_eval_prompt"] == 1 and [first_user(t) for t in out] == ["other"]


def test_mix_never_cuts_before_a_proposed_write(tmp_path):
    def call(name: str) -> dict:
        return {"role": "assistant", "content": "", "tool_calls": [
            {"id": name, "type": "function", "function": {"name": name, "arguments": {}}}]}

    ret = Transcript(messages=[
        {"role": "system", "content": "sys"}, {"role": "user", "content": "return the TV from #1"},
        call("get_order_details"), {"role": "tool", "content": "order #1 delivered", "tool_call_id": "get_order_details"},
        call("return_delivered_order_items"),
        {"role": "assistant", "content": "Shall I go ahead?", "weight": 0}, {"role": "user", "content": "yes"},
        {"role": "assistant", "content": "Done."}])
    path = tmp_path / "t.jsonl"
    write_transcripts([ret, _conv("question", "c1")], path)
    out, _ = build([(path, None)], [], first_turn_share=1.0, seed=0)
    kept = {first_user(t): t for t in out}
    # the lookup alone would teach stopping after it; the return proposal is kept, what follows is still cut
    assert [m.get("tool_calls", [{}])[0].get("function", {}).get("name") for m in kept["return the tv from #1"].messages
            if m["role"] == "assistant"] == ["get_order_details", "return_delivered_order_items"]
    assert sum(m["role"] == "assistant" for m in kept["question"].messages) == 1
