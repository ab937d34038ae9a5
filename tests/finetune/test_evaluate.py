"""The dev-split evaluator: which turns are scored, how arguments compare, and a run on a tiny model."""

from __future__ import annotations

from finetune.evaluate import arguments_equal, evaluate_transcripts, tool_call_turns
from finetune.transcripts import load_transcripts


def test_turns_and_argument_comparison(transcripts_file):
    ts = load_transcripts(transcripts_file)
    turns = tool_call_turns(ts)
    assert len(turns) == 2 * len(ts) and len(tool_call_turns(ts, first_only=True)) == len(ts)
    t, i, expected = turns[0]
    assert t.messages[i]["role"] == "assistant" and expected["name"] == "get_order_details"
    assert arguments_equal({"order_id": "#W1"}, {"order_id": "W1"})
    assert arguments_equal({"item_ids": ["2", "1"], "x": "A  b"}, {"x": "a b", "item_ids": ["1", "2"]})
    assert not arguments_equal({"order_id": "#W1"}, {"order_id": "#W2"})
    assert not arguments_equal({"order_id": "#W1"}, {"order_id": "#W1", "extra": 1})
    assert not arguments_equal({}, "not a dict")
    # an optional argument left out is its default (the tool runs the same); a wrong value still differs
    schema = {"properties": {"k": {"type": "integer", "default": 5}}}
    assert arguments_equal({}, {"k": 5}, schema) and arguments_equal({"k": 5}, {}, schema)
    assert not arguments_equal({}, {"k": 3}, schema) and not arguments_equal({}, {"k": 5})


def test_evaluate_runs_on_a_tiny_model(tiny_model_dir, transcripts_file, tmp_path):
    out = tmp_path / "pred.jsonl"
    summary = evaluate_transcripts(transcripts_file, base=str(tiny_model_dir), limit=3, max_new_tokens=8,
                                   predictions_out=out, progress=False)
    assert summary["tool_call_turns"] == 3
    assert 0 <= summary["tool_name_accuracy"] <= 1 and 0 <= summary["exact_argument_accuracy"] <= 1
    assert len(out.read_text().splitlines()) == 3
