"""Training: loss only on assistant turns, a tiny model that learns (adapter moves, base does not), a standard
adapter folder peft loads, resume after an interruption, merge.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from finetune.encoding import IGNORE, agent_template, assistant_spans, encode
from finetune.train import FinetuneArguments, encode_all, main, make_collator
from finetune.transcripts import load_transcripts, parse_row

from .conftest import conversation


def _args(tiny_model_dir, transcripts_file, out, **kw) -> FinetuneArguments:
    base = dict(transcripts=str(transcripts_file), base=str(tiny_model_dir), out=str(out), max_steps=4, batch_size=2,
                save_steps=2, logging_steps=1, learning_rate=5e-3, dev_fraction=0.0, lora_r=4, lora_alpha=8,
                lora_dropout=0.0, max_length=512, warmup_ratio=0.0)
    base.update(kw)
    return FinetuneArguments(**base)


def test_labels_only_on_assistant_turns(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    t = parse_row(conversation(0, "c"))
    template = agent_template()
    text, spans = assistant_spans(tok, t, template)
    e = encode(tok, t, template, 2048)
    labeled = tok.decode([i for i, lab in zip(e.input_ids, e.labels, strict=True) if lab != IGNORE])
    # the two learnable assistant turns (tool call included, up to <|im_end|>); the weight-0 one is context only
    assert labeled == (
        '<tool_call>{"name": "get_order_details", "arguments": {"order_id": "#W1000000"}}</tool_call><|im_end|>'
        "Your order #W1000000 is pending.<|im_end|>"
        '<tool_call>{"name": "list_my_orders", "arguments": {}}</tool_call><|im_end|>'
    )
    assert len(spans) == 3 and "Only #W1000000." in text
    masked = tok.decode([i for i, lab in zip(e.input_ids, e.labels, strict=True) if lab == IGNORE])
    for context in ("You are the shop's support assistant.", "Where is my order", "is pending (total $12.50)",
                    "get_order_details(order_id: string)", "Only #W1000000."):
        assert context in masked
    assert all(lab in (IGNORE, i) for i, lab in zip(e.input_ids, e.labels, strict=True))


def test_one_reply_examples_learn_the_call_or_an_empty_reply_only(tiny_model_dir):
    """The synthesizer's format: the messages the agent sent (earlier assistant messages weight 0) and the reply to
    learn last; an empty reply is learned as the end of the turn alone.
    """
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    template = agent_template()
    sent = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Where is #W1?"},
            {"role": "assistant", "content": "", "weight": 0, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_order_details",
                                                              "arguments": {"order_id": "#W1"}}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "Order #W1: status pending."}]
    empty = parse_row({"messages": [*sent, {"role": "assistant", "content": ""}]})
    e = encode(tok, empty, template, 512)
    assert tok.decode([i for i, lab in zip(e.input_ids, e.labels, strict=True) if lab != IGNORE]) == "<|im_end|>"
    call = parse_row({"messages": [*sent[:2], {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_order_details", "arguments": '{"order_id": "#W1"}'}}]}]})
    e = encode(tok, call, template, 512)
    assert tok.decode([i for i, lab in zip(e.input_ids, e.labels, strict=True) if lab != IGNORE]) == (
        '<tool_call>{"name": "get_order_details", "arguments": {"order_id": "#W1"}}</tool_call><|im_end|>')


def test_shared_prefix_loss_equals_full_forward(tiny_model_dir, transcripts_file, tmp_path):
    """Running the system turn once (as a cache) gives the same loss as the whole conversation in one pass."""
    from transformers import TrainingArguments

    from finetune.train import PrefixSharingTrainer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    transcripts = load_transcripts(transcripts_file)[:2]
    batches, report = encode_all(tok, transcripts, 512, agent_template(), batch_size=2)
    assert report["prefixes"] == 1 and len(batches) == 1 and len(batches[0]["prefix"]) > 20
    inputs = make_collator(tok.pad_token_id)(batches)
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), report_to=[], use_cpu=True)
    trainer = PrefixSharingTrainer.create(model=model, args=args)
    with torch.no_grad():
        shared = trainer.compute_loss(model, dict(inputs))
        full_losses, counts = [], []
        for r in batches[0]["rows"]:
            ids = torch.tensor([batches[0]["prefix"] + r["input_ids"]])
            labels = torch.tensor([[IGNORE] * len(batches[0]["prefix"]) + r["labels"]])
            out = model(input_ids=ids, labels=labels)
            n = int((labels[:, 1:] != IGNORE).sum())
            full_losses.append(out.loss * n)
            counts.append(n)
    assert torch.allclose(shared, sum(full_losses) / sum(counts), atol=1e-4)


class _Capture(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.model = model


def test_tiny_model_trains_adapter_only_and_peft_loads_it(tiny_model_dir, transcripts_file, tmp_path):
    from peft import PeftModel

    out = tmp_path / "adapter"
    capture = _Capture()
    report = main(_args(tiny_model_dir, transcripts_file, out, max_steps=6), callbacks=[capture])
    assert report["global_step"] == 6 and report["final_loss"] < report["first_loss"]
    assert report["tokens_per_second"] > 0 and report["data"]["redacted"] is not None

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    trained = capture.model
    base_state = base.state_dict()
    for name, p in trained.named_parameters():
        if "lora_" in name:
            continue
        key = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch.equal(p.detach().cpu(), base_state[key]), f"base weight {key} changed"

    # a standard peft adapter folder (what vLLM's --lora-modules reads)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                             "down_proj"}
    weights = load_file(str(out / "adapter_model.safetensors"))
    assert any(k.endswith("self_attn.q_proj.lora_A.weight") for k in weights)
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: non-zero means it learned

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(out)).eval()
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert not torch.allclose(tuned(ids).logits, base(ids).logits)
    assert (out / "data" / "train.jsonl").exists() and (out / "training_report.json").exists()


def test_gradient_accumulation_reports_the_same_loss_as_one_batch(tiny_model_dir, tmp_path):
    """The loss of a step is the mean over all its learned tokens, whether the sequences share a micro-batch or are
    accumulated one by one (and the shared prefix cache is reused within the step).
    """
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps(conversation(i, f"c{i}")) + "\n" for i in range(2)))
    losses = []
    for batch_size, grad_accum in ((2, 1), (1, 2)):
        report = main(_args(tiny_model_dir, path, tmp_path / f"b{batch_size}", max_steps=1, batch_size=batch_size,
                            grad_accum=grad_accum, redact=False))
        losses.append(next(h["loss"] for h in report["log_history"] if "loss" in h))
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_a_time_budget_stops_training_and_still_saves_the_adapter(tiny_model_dir, transcripts_file, tmp_path):
    out = tmp_path / "adapter"
    report = main(_args(tiny_model_dir, transcripts_file, out, max_steps=6, max_train_seconds=1e-6))
    assert report["stopped_by_time_budget"] and report["global_step"] == 1 and report["max_steps_planned"] == 6
    assert (out / "adapter_model.safetensors").exists()


class _Interrupt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt("simulated interruption")


def test_interrupted_run_resumes_from_checkpoint(tiny_model_dir, transcripts_file, tmp_path):
    out = tmp_path / "adapter"
    with pytest.raises(KeyboardInterrupt):
        main(_args(tiny_model_dir, transcripts_file, out), callbacks=[_Interrupt()])
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert not (out / "adapter_model.safetensors").exists()
    report = main(_args(tiny_model_dir, transcripts_file, out, resume=True))
    assert report["resumed_from"].endswith("checkpoint-2")
    assert report["global_step"] == 4
    # the resumed run ran only steps 3-4 (steps 1-2 come from the checkpoint's state)
    assert sum(1 for h in report["log_history"] if "loss" in h and h["step"] in (3, 4)) == 2


def test_resume_without_checkpoint_is_a_clear_error(tiny_model_dir, transcripts_file, tmp_path):
    from shopdesk.output import UserError

    with pytest.raises(UserError, match="no checkpoint"):
        main(_args(tiny_model_dir, transcripts_file, tmp_path / "fresh", resume=True))


def test_init_adapter_continues_from_its_weights(tiny_model_dir, transcripts_file, tmp_path, capsys):
    from shopdesk.output import UserError

    first = tmp_path / "first"
    main(_args(tiny_model_dir, transcripts_file, first, max_steps=4))
    start = load_file(str(first / "adapter_model.safetensors"))
    # rank 8 asked for, but continued training keeps the starting adapter's rank 4
    report = main(_args(tiny_model_dir, transcripts_file, tmp_path / "second", max_steps=1, learning_rate=1e-9,
                        lora_r=8, init_adapter=str(first)))
    assert report["init_adapter"] == str(first)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: --init_adapter")]
    assert len(warning) == 1 and "--lora_r 8 (the adapter has 4)" in warning[0] and "lora_alpha" not in warning[0]
    config = json.loads((tmp_path / "second" / "adapter_config.json").read_text())
    assert config["r"] == 4
    after = load_file(str(tmp_path / "second" / "adapter_model.safetensors"))
    assert after.keys() == start.keys()
    # one step at a negligible learning rate: the weights are the first adapter's (a fresh LoRA has B == 0)
    for k, v in start.items():
        assert torch.allclose(after[k].float(), v.float(), atol=1e-2), k
    assert any(v.abs().sum() > 0 for k, v in after.items() if "lora_B" in k)
    with pytest.raises(UserError, match="not a LoRA adapter"):
        main(_args(tiny_model_dir, transcripts_file, tmp_path / "third", init_adapter=str(tmp_path)))


def test_merge_writes_an_equivalent_model(tiny_model_dir, transcripts_file, tmp_path):
    from peft import PeftModel

    out = tmp_path / "adapter"
    main(_args(tiny_model_dir, transcripts_file, out, max_steps=2, merge=True, save_dtype="float32"))
    merged = AutoModelForCausalLM.from_pretrained(str(out / "merged"), dtype=torch.float32).eval()
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(out)).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, tuned(ids).logits, atol=1e-4)
    assert AutoTokenizer.from_pretrained(str(out / "merged")).chat_template == agent_template()


def test_cli_reads_recipe_and_reports_bad_input(tiny_model_dir, transcripts_file, tmp_path):
    from typer.testing import CliRunner

    from shopdesk.cli import app

    recipe = tmp_path / "r.yaml"
    recipe.write_text("lora_r: 2\nlora_alpha: 4\nmax_steps: 1\nbatch_size: 2\nsave_steps: 1\ndev_fraction: 0.0\n")
    out = tmp_path / "cli-adapter"
    result = CliRunner().invoke(app, ["finetune", "--transcripts", str(transcripts_file), "--base", str(tiny_model_dir),
                                      "--out", str(out), "--config", str(recipe)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2
    result = CliRunner().invoke(app, ["finetune", "--transcripts", str(tmp_path / "missing.jsonl"), "--out", str(out)])
    assert result.exit_code == 2 and "no such transcript file" in result.output
