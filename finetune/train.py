"""LoRA fine-tuning of the chat model on support transcripts, loss on assistant turns only, with the agent's template.

    # the shipped adapter (recipe holds the hyper-parameters; command-line flags override it)
    shopdesk finetune --transcripts .data/synth.jsonl --out finetune/adapters/shopdesk-smollm2 \
        --config finetune/recipes/smollm2-135m-lora.yaml

    # a quick smoke run on any transcripts
    shopdesk finetune --transcripts my.jsonl --out /tmp/adapter --max_steps 10 --save_steps 5

    # go on from the last checkpoint of an interrupted run; also write a merged model to OUT/merged
    shopdesk finetune --transcripts my.jsonl --out /tmp/adapter --resume --merge

    # the same without the shopdesk command
    python -m finetune.train --transcripts my.jsonl --base .data/models/smollm2-135m-instruct --out /tmp/adapter

The adapter folder (adapter_config.json + adapter_model.safetensors) loads with `PeftModel.from_pretrained` and with
vLLM's `--enable-lora --lora-modules NAME=DIR`; OUT/training_report.json records the data report, the arguments,
time and throughput; OUT/data/dev.jsonl is the held-out split (customers never seen in training).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shopdesk.output import UserError

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class FinetuneArguments:
    """Arguments of `shopdesk finetune` (also settable in a YAML recipe passed with --config)."""

    transcripts: str = field(default=None, metadata={"help": "JSONL transcripts (OpenAI chat or ShareGPT format)."})
    out: str = field(default=None, metadata={"help": "Output folder for the adapter, checkpoints and report."})
    base: str | None = field(default=None, metadata={"help": "Base model folder or id; default: the prepared SmolLM2."})
    dev_transcripts: str | None = field(
        default=None, metadata={"help": "Held-out transcripts; default: a customer-disjoint split of --transcripts."}
    )
    dev_fraction: float = field(default=0.1, metadata={"help": "Share of customers held out when splitting."})
    redact: bool = field(default=True, metadata={"help": "Redact PII (emails, phones, cards, addresses) first."})
    resume: bool = field(default=False, metadata={"help": "Resume from the last checkpoint in OUT/checkpoints."})
    init_adapter: str | None = field(
        default=None, metadata={"help": "Start from this trained LoRA adapter (continued training on new transcripts, "
                                        "e.g. another shop's or newly logged ones); its rank and modules are kept."})
    merge: bool = field(default=False,
                        metadata={"help": "Also write the base model with the adapter merged to OUT/merged."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (vLLM serves up to --max-lora-rank, 16 by default)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS),
                                      metadata={"help": "Modules to adapt."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the training transcripts."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (overrides epochs)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (cosine decay, warm-up)."})
    warmup_ratio: float = field(default=0.05, metadata={"help": "Share of steps for the learning-rate warm-up."})
    batch_size: int = field(default=4, metadata={"help": "Conversations per device step."})
    grad_accum: int = field(default=1, metadata={"help": "Steps accumulated per optimizer step."})
    max_length: int = field(default=1024, metadata={"help": "Tokens per conversation; longer ones are cut."})
    max_assistant_turns: int = field(
        default=0, metadata={"help": "Keep each conversation only up to its Nth learnable assistant turn (0: all); "
                                     "1 trains on first replies and tool calls only, the cheapest on a CPU."})
    lora_last_layers: int = field(
        default=0, metadata={"help": "Adapt only the last N decoder layers (0: all); backward then stops there."})
    save_steps: int = field(default=50, metadata={"help": "Checkpoint every N optimizer steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept."})
    logging_steps: int = field(default=5, metadata={"help": "Log the loss every N steps."})
    seed: int = field(default=0, metadata={"help": "Seed for the split, the shuffling and LoRA init."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice)."})
    save_dtype: str = field(default="bfloat16",
                            metadata={"help": "dtype of the saved adapter weights (half the size)."})
    int8_aware: str | None = field(
        default=None, metadata={"help": "Train with the in-process int8 weights in the loop (finetune.int8): int8 or "
                                        "int8-mixed, the Settings.local_weights option the adapter is for; fp32 "
                                        "throughout, on a GPU too."})
    max_train_seconds: float | None = field(
        default=None, metadata={"help": "Stop after the step that passes this many seconds of training and save the "
                                        "adapter (a wall-clock budget on a shared CPU; the report says it stopped)."})


def truncate_turns(t, n: int):
    """`t` cut after its n-th learnable assistant turn."""
    from finetune.transcripts import Transcript

    seen = 0
    for i, m in enumerate(t.messages):
        if m["role"] == "assistant" and m.get("weight", 1) != 0:
            seen += 1
            if seen == n:
                return Transcript(messages=t.messages[: i + 1], tools=t.tools, meta=t.meta)
    return t


def _cast_adapter(path: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def make_parser():
    """The argument parser of `shopdesk finetune`: FinetuneArguments from flags or a YAML recipe."""
    from trl import TrlParser

    return TrlParser(FinetuneArguments, prog="shopdesk finetune", description=__doc__.split("\n\n")[0])


def _check(args: FinetuneArguments) -> None:
    if not args.transcripts:
        raise UserError("--transcripts is required (a JSONL file of transcripts)")
    if not args.out:
        raise UserError("--out is required (the adapter folder to write)")
    if args.lora_r < 1 or args.lora_alpha < 1:
        raise UserError("--lora_r and --lora_alpha must be positive")
    if not 0 <= args.lora_dropout < 1:
        raise UserError("--lora_dropout must be in [0, 1)")
    if args.batch_size < 1 or args.grad_accum < 1 or args.max_length < 16:
        raise UserError("--batch_size and --grad_accum must be >= 1 and --max_length >= 16")
    if args.int8_aware:
        from shopdesk.settings import INT8_KEEP_FP32

        if args.int8_aware not in INT8_KEEP_FP32:
            raise UserError(f"--int8_aware {args.int8_aware}: expected one of {', '.join(INT8_KEEP_FP32)}")
    if args.init_adapter and not (Path(args.init_adapter) / "adapter_config.json").is_file():
        raise UserError(f"--init_adapter {args.init_adapter}: no adapter_config.json there (not a LoRA adapter folder)")


def init_adapter_overrides(args) -> list[str]:
    """The LoRA shape options that continued training ignores because they differ from the starting adapter's."""
    config = json.loads((Path(args.init_adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    asked = {"lora_r": (args.lora_r, config.get("r")), "lora_alpha": (args.lora_alpha, config.get("lora_alpha")),
             "lora_dropout": (args.lora_dropout, config.get("lora_dropout")),
             "target_modules": (sorted(args.target_modules), sorted(config.get("target_modules") or []))}
    return [f"--{name} {want} (the adapter has {have})" for name, (want, have) in asked.items() if want != have]


class _ListDataset:
    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def make_collator(pad_id: int):
    """A dataset item is already a micro-batch of conversations that share one prefix (system turn + tool list)."""
    import torch

    def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        (item,) = items
        rows, prefix = item["rows"], item["prefix"]
        n = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), n), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), len(prefix) + n), dtype=torch.long)
        mask[:, : len(prefix)] = 1
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[i, :k] = torch.tensor(r["input_ids"])
            labels[i, :k] = torch.tensor(r["labels"])
            mask[i, len(prefix) : len(prefix) + k] = 1
        return {"prefix_ids": torch.tensor([prefix], dtype=torch.long), "input_ids": ids, "labels": labels,
                "attention_mask": mask}

    return collate


def system_prefix_ids(tokenizer, t, template: str) -> list[int]:
    """Token ids of the system turn with the tool list (shared by every conversation of a role)."""
    from finetune.encoding import template_messages

    messages = template_messages(t)
    if not messages or messages[0]["role"] != "system" and not t.tools:
        return []
    head = messages[:1] if messages[0]["role"] == "system" else []
    text = tokenizer.apply_chat_template(head, tools=t.tools, chat_template=template, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_all(tokenizer, transcripts, max_length: int, template: str, batch_size: int = 1,
               seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Micro-batches of encoded conversations: {"prefix": shared ids, "rows": [{"input_ids", "labels"}]}.

    Conversations of one role start with the same system turn and tool list (hundreds of tokens); it is run without
    gradient (once per optimizer step, see PrefixSharingTrainer) and its KV cache shared, instead of once per
    conversation with gradient. The report's prefix_tokens_per_epoch counts it once per micro-batch; row_tokens are
    the tokens that run with gradient.
    """
    import random

    from tqdm import tqdm

    from finetune.encoding import encode

    groups: dict[tuple[int, ...], list[dict[str, list[int]]]] = {}
    dropped = truncated = tokens = target = 0
    for t in tqdm(transcripts, desc="render", file=sys.stderr, disable=len(transcripts) < 50):
        e = encode(tokenizer, t, template, max_length)
        if e is None:
            dropped += 1
            continue
        truncated += e.truncated
        tokens += len(e.input_ids)
        target += sum(x != -100 for x in e.labels)
        prefix = system_prefix_ids(tokenizer, t, template)
        if prefix and (e.input_ids[: len(prefix)] != prefix or any(x != -100 for x in e.labels[: len(prefix)])
                       or len(prefix) == len(e.input_ids)):
            prefix = []  # the prefix does not tokenise the same on its own: no sharing for this one
        groups.setdefault(tuple(prefix), []).append(
            {"input_ids": e.input_ids[len(prefix):], "labels": e.labels[len(prefix):]})
    rng = random.Random(seed)
    batches: list[dict[str, Any]] = []
    for prefix, rows in groups.items():
        rows.sort(key=lambda r: len(r["input_ids"]))  # similar lengths together: little padding
        for i in range(0, len(rows), batch_size):
            batches.append({"prefix": list(prefix), "rows": rows[i : i + batch_size]})
    rng.shuffle(batches)
    shared = sum(len(b["prefix"]) for b in batches)
    computed = sum(len(b["prefix"]) + sum(len(r["input_ids"]) for r in b["rows"]) for b in batches)
    return batches, {"examples": len(transcripts) - dropped, "micro_batches": len(batches), "dropped": dropped,
                     "truncated": truncated, "tokens": tokens, "target_tokens": target, "prefixes": len(groups),
                     "tokens_computed_per_epoch": computed, "prefix_tokens_per_epoch": shared,
                     "row_tokens": computed - shared}


def time_budget(seconds: float):
    """A Trainer callback that ends training after the step that passes `seconds` (the adapter is then saved as
    usual); its `stopped_at_step` says whether it did.
    """
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self):
            self.start: float | None = None
            self.stopped_at_step: int | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() - self.start > seconds and state.global_step < state.max_steps:
                self.stopped_at_step = state.global_step
                control.should_training_stop = True
                control.should_save = True

    return TimeBudget()


class PrefixSharingTrainer:
    """Builds a transformers Trainer whose loss runs the shared prefix once (no grad) and the rest on its cache.

    The prefix's cache depends only on the weights, which change only at an optimizer step: within one step (the
    micro-batches of gradient accumulation) it is computed once per prefix and copied for each micro-batch. Logits are
    computed only where a token is learned (the lm_head over a 49k vocabulary is a fifth of a step otherwise), and the
    loss is the mean over every learned token of the step, however the sequences fall into micro-batches.
    """

    @staticmethod
    def create(**kwargs):
        import copy

        import torch
        import torch.nn.functional as F
        from transformers import Trainer

        from finetune.encoding import IGNORE

        class _Trainer(Trainer):
            _prefix_caches: dict | None = None
            _prefix_step: tuple | None = None

            def _prefix_cache(self, model, prefix):
                step = (self.state.global_step, model.training)
                if self._prefix_step != step:
                    self._prefix_caches, self._prefix_step = {}, step
                key = tuple(prefix[0].tolist())
                if key not in self._prefix_caches:
                    with torch.no_grad():
                        self._prefix_caches[key] = model(input_ids=prefix, use_cache=True).past_key_values
                return copy.deepcopy(self._prefix_caches[key])

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                prefix = inputs.pop("prefix_ids")
                ids, labels = inputs["input_ids"], inputs["labels"]
                cache = None
                if prefix.shape[1] > 0:
                    cache = self._prefix_cache(model, prefix)
                    cache.batch_repeat_interleave(ids.shape[0])
                targets = labels[:, 1:]  # position i predicts token i + 1
                keep = (targets != IGNORE).any(0).nonzero().squeeze(1)
                outputs = model(input_ids=ids, attention_mask=inputs["attention_mask"], past_key_values=cache,
                                use_cache=cache is not None, logits_to_keep=keep)
                logits = outputs.logits.float()
                total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[:, keep].reshape(-1),
                                        ignore_index=IGNORE, reduction="sum")
                # with num_items_in_batch (every learned token of the optimizer step) the Trainer does not divide by
                # the accumulation steps again
                count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
                loss = total / count
                return (loss, outputs) if return_outputs else loss

        return _Trainer(**kwargs)


def _resolve_base(args: FinetuneArguments) -> str:
    if args.base:
        return args.base
    from shopdesk.models import resolve_chat_model

    return resolve_chat_model()


def main(args: FinetuneArguments, callbacks: list | None = None) -> dict[str, Any]:
    """Train (or resume), save the adapter (and merged model), and return the report written next to it."""
    _check(args)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from finetune.encoding import agent_template
    from finetune.prepare import prepare, with_dev_file
    from finetune.transcripts import load_transcripts, write_transcripts

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    ckpt_dir = out / "checkpoints"
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if args.resume and last is None:
        raise UserError(f"--resume: no checkpoint in {ckpt_dir} to resume from")

    transcripts = load_transcripts(args.transcripts)
    if not transcripts:
        raise UserError(f"{args.transcripts}: no transcripts")
    if args.dev_transcripts:
        data = prepare(transcripts, redact=args.redact, dev_fraction=0.0, seed=args.seed)
        held = prepare(load_transcripts(args.dev_transcripts), redact=args.redact, dev_fraction=0.0, seed=args.seed)
        data = with_dev_file(data, held.train)
    else:
        data = prepare(transcripts, redact=args.redact, dev_fraction=args.dev_fraction, seed=args.seed)
    if not data.train:
        raise UserError("no training transcripts left after de-duplication and the dev split")
    write_transcripts(data.dev, out / "data" / "dev.jsonl")
    write_transcripts(data.train, out / "data" / "train.jsonl")
    print(f"data: {json.dumps(data.report)}", file=sys.stderr)

    base = _resolve_base(args)
    cuda = torch.cuda.is_available()
    # bf16 matmul on this CPU is ~200x slower than fp32; int8-aware training rounds to a grid finer than bf16's
    half = cuda and not args.int8_aware
    dtype = torch.bfloat16 if half else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(base)
    template = agent_template()
    if args.max_assistant_turns:
        data.train = [truncate_turns(t, args.max_assistant_turns) for t in data.train]
    rows, enc_report = encode_all(tokenizer, data.train, args.max_length, template, args.batch_size, args.seed)
    if not rows:
        raise UserError("no transcript has an assistant turn that fits in --max_length")
    print(f"encoded: {json.dumps(enc_report)}", file=sys.stderr)

    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if cuda:
        model.to("cuda")
    layers = None
    if args.lora_last_layers:
        n_layers = model.config.num_hidden_layers
        layers = list(range(max(0, n_layers - args.lora_last_layers), n_layers))
    lora = LoraConfig(
        task_type="CAUSAL_LM", r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules=list(args.target_modules), layers_to_transform=layers,
        layers_pattern="layers" if layers else None,
    )
    if args.init_adapter:  # continued training: the adapter's own rank/modules/dropout, its weights as the start
        ignored = init_adapter_overrides(args)
        if ignored:
            print(f"warning: --init_adapter keeps the adapter's own LoRA shape; ignored: {'; '.join(ignored)}",
                  file=sys.stderr)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.init_adapter, is_trainable=True)
    else:
        model = get_peft_model(model, lora)
    int8_layers = None
    if args.int8_aware:
        from finetune.int8 import simulate_int8
        from shopdesk.settings import INT8_KEEP_FP32

        int8_layers = simulate_int8(model, INT8_KEEP_FP32[args.int8_aware])
        print(f"int8 in the loop ({args.int8_aware}): {json.dumps(int8_layers)}", file=sys.stderr)
    trainable, total = model.get_nb_trainable_parameters()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    targs = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=1,  # each dataset item is a micro-batch of args.batch_size conversations
        gradient_accumulation_steps=args.grad_accum,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=args.warmup_ratio,  # a float below 1 is a ratio of the total steps
        logging_steps=args.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=args.save_steps,
        save_total_limit=args.save_total_limit,
        seed=args.seed,
        bf16=half,
        use_cpu=not cuda,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    budget = time_budget(args.max_train_seconds) if args.max_train_seconds else None
    trainer = PrefixSharingTrainer.create(
        model=model, args=targs, train_dataset=_ListDataset(rows), data_collator=make_collator(pad_id),
        callbacks=[*(callbacks or []), *([budget] if budget else [])],
    )
    start = time.perf_counter()
    resumed_from = last if args.resume else None
    result = trainer.train(resume_from_checkpoint=resumed_from)
    seconds = time.perf_counter() - start
    model.save_pretrained(str(out))
    if args.save_dtype != "float32":
        _cast_adapter(out / "adapter_model.safetensors", args.save_dtype)

    steps_per_epoch = math.ceil(len(rows) / args.grad_accum)
    done_steps = trainer.state.global_step
    first_step = int(Path(resumed_from).name.split("-")[-1]) if resumed_from else 0
    epochs_run = (done_steps - first_step) / steps_per_epoch
    tokens_run = enc_report["tokens"] * epochs_run  # conversation tokens covered (shared prefixes counted in each)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    report = {
        "base": base,
        "adapter": str(out),
        "device": "cuda" if cuda else "cpu",
        "dtype": str(dtype).replace("torch.", ""),
        "torch_threads": torch.get_num_threads(),
        "data": data.report,
        "encoding": enc_report,
        "int8_in_the_loop": int8_layers,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "global_step": done_steps,
        "resumed_from": resumed_from,
        "init_adapter": args.init_adapter,
        "train_seconds": round(seconds, 1),
        "tokens_per_second": round(tokens_run / seconds, 1) if seconds > 0 else None,
        "computed_tokens_per_second": round(enc_report["tokens_computed_per_epoch"] * epochs_run / seconds, 1)
        if seconds > 0 else None,
        # the tokens after the shared system turn + tool list, which run with gradient (the prefix runs once per
        # optimizer step and prefix, without)
        "row_tokens_per_second": round(enc_report["row_tokens"] * epochs_run / seconds, 1) if seconds > 0 else None,
        "stopped_by_time_budget": bool(budget and budget.stopped_at_step),
        "max_steps_planned": trainer.state.max_steps,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "train_loss": result.training_loss,
        "log_history": trainer.state.log_history,
        "arguments": asdict(args),
    }
    if args.merge:
        merged = model.merge_and_unload()
        merged.save_pretrained(str(out / "merged"))
        tokenizer.chat_template = template
        tokenizer.save_pretrained(str(out / "merged"))
        report["merged"] = str(out / "merged")
    (out / "training_report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def run_cli(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse `argv` and train; the run's report."""
    (args,) = make_parser().parse_args_and_config(argv)
    return main(args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    try:
        report = run_cli()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({k: v for k, v in report.items() if k != "log_history"}, indent=2, default=str))
