"""What the tool-call grammar costs in-process: grammar compile time, and decode tokens/s with and without xgrammar's
logits processor on the same prompt, in the same run (SmolLM2 + the shipped adapter, fp32, greedy).

    python bench/bench_grammar.py                      # the customer role's tools, 3 runs per prompt
    python bench/bench_grammar.py --runs 5 --tokens 48 --json
    python bench/bench_grammar.py --adapter none       # the base model

Both loops decode token by token with the KV cache; the constrained one runs the processor LocalChatModel passes to
generate() (accept the last token, fill the mask, apply it) and stops where the grammar ends the reply; the free
one then decodes exactly as many tokens, so both rates are over the same number of steps; the two alternate, and
the best run of each is compared (the median is in --json). "alone" is the
processor's time per token with the model left out (the reply replayed through it), the figure least moved by
other work on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = {
    "call": "Where is my order #W2611340?",  # the adapter answers with a call: the JSON part of the grammar
    "text": "Thanks, that was all. Please say goodbye.",  # plain text: the any-text part
}
ENUMS = {"order_id": ["#W2611340", "#W4817420", "#W6067464"], "item_ids": ["1008292230", "2648909398"],
         "payment_method_id": ["credit_card_9513926"]}


@dataclass
class Args:
    tokens: int = 48
    runs: int = 3
    threads: int | None = None
    adapter: str | None = None
    json: bool = False


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=48, help="most new tokens per reply")
    p.add_argument("--runs", type=int, default=3, help="runs per prompt and mode (best and median reported)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--adapter", default=None, help="adapter folder or 'none' (default: the shipped one)")
    p.add_argument("--json", action="store_true")
    return p


def machine_load() -> dict:
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count()}


def compile_times(loaded, tools: list[dict]) -> dict:
    """Seconds to set up xgrammar for the tokenizer, to compile the role's grammar with new enums (every turn
    whose enums changed), and to find it again in the cache.
    """
    from agent.grammar import CallGrammars, call_structural_tag, constrained_tools

    t = time.perf_counter()
    grammars = CallGrammars(loaded.tokenizer, vocab_size=loaded.model.config.vocab_size, stop_token_ids=loaded.eos)
    setup = time.perf_counter() - t
    cold = []
    for i in range(5):  # five turns, each with one more order id: five different grammars
        tag = call_structural_tag(constrained_tools(tools, dict(ENUMS, order_id=ENUMS["order_id"] + [f"#W100000{i}"])))
        t = time.perf_counter()
        grammars.compiled(tag)
        cold.append(time.perf_counter() - t)
    t = time.perf_counter()
    grammars.compiled(tag)
    hit = time.perf_counter() - t
    return {"tokenizer_setup_s": round(setup, 3), "compile_s_median": round(statistics.median(cold), 4),
            "compile_s_max": round(max(cold), 4), "cache_hit_s": round(hit, 6)}


def decode(loaded, ids, steps: int, processor=None) -> tuple[list[int], float, float]:
    """Greedy decode of at most `steps` tokens: (tokens, decode seconds after the first token, seconds spent in the
    processor). With a processor, stops at the end of turn the grammar allows.
    """
    import torch

    model = loaded.model
    stop = set(loaded.eos)
    in_processor = 0.0
    out: list[int] = []
    t0 = None
    with torch.inference_mode():
        logits = model(ids, use_cache=True)
        past = logits.past_key_values
        scores = logits.logits[:, -1, :]
        for _ in range(steps):
            if processor is not None:
                t = time.perf_counter()
                scores = processor(torch.cat([ids, torch.tensor([out], dtype=ids.dtype)], dim=1) if out else ids,
                                   scores.clone())
                in_processor += time.perf_counter() - t
            nxt = int(scores.argmax(-1))
            if t0 is None:
                t0 = time.perf_counter()
            if processor is not None and nxt in stop:
                break
            out.append(nxt)
            step = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = step.past_key_values
            scores = step.logits[:, -1, :]
    return out, time.perf_counter() - (t0 or time.perf_counter()), in_processor


def bench_prompt(chat, loaded, tools: list[dict], text: str, args: Args) -> dict:
    from langchain_core.messages import HumanMessage, SystemMessage

    from agent.grammar import call_structural_tag, constrained_tools
    from agent.session import SYSTEM_PROMPTS

    prompt = chat.prompt_text([SystemMessage(SYSTEM_PROMPTS["customer"]), HumanMessage(text)], tools)
    ids = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    tag = call_structural_tag(constrained_tools(tools, ENUMS))
    loaded.grammars.compiled(tag)  # compile outside the timed loops
    with_rates, free_rates, per_token_ms, reply, free_reply = [], [], [], "", ""
    for _ in range(args.runs):
        tokens, secs, in_proc = decode(loaded, ids, args.tokens, loaded.grammars.logits_processor(tag))
        n = len(tokens)
        free, free_secs, _ = decode(loaded, ids, n)
        # a rate over the steps after the first token, as in bench_llm (the first includes the prefill)
        with_rates.append(max(n - 1, 1) / secs if secs else float("nan"))
        free_rates.append(max(len(free) - 1, 1) / free_secs if free_secs else float("nan"))
        per_token_ms.append(1000 * in_proc / max(n + 1, 1))
        reply, free_reply = loaded.tokenizer.decode(tokens), loaded.tokenizer.decode(free)
    # best of the runs: on a shared machine the fastest run is the one least slowed by other work
    with_tps, free_tps = max(with_rates), max(free_rates)
    return {"prompt": text, "prompt_tokens": ids.shape[1], "new_tokens": n, "reply": reply, "free_reply": free_reply,
            "free_tokens_per_s": round(free_tps, 2), "grammar_tokens_per_s": round(with_tps, 2),
            "free_tokens_per_s_median": round(statistics.median(free_rates), 2),
            "grammar_tokens_per_s_median": round(statistics.median(with_rates), 2),
            "ratio": round(with_tps / free_tps, 3), "processor_ms_per_token": round(min(per_token_ms), 3),
            "mask_only_ms_per_token": round(mask_only_ms(loaded, tag, ids, tokens), 3)}


def mask_only_ms(loaded, tag: dict, ids, tokens: list[int], repeats: int = 20) -> float:
    """The processor's own time per token without the model: the reply's tokens replayed through fresh processors
    (best of `repeats`, so a busy machine shows less of its noise).
    """
    import torch

    vocab = loaded.model.config.vocab_size
    best = float("inf")
    for _ in range(repeats):
        processor = loaded.grammars.logits_processor(tag)
        t = time.perf_counter()
        for i in range(len(tokens) + 1):
            processor(torch.cat([ids, torch.tensor([tokens[:i]], dtype=ids.dtype)], dim=1), torch.zeros(1, vocab))
        best = min(best, (time.perf_counter() - t) / (len(tokens) + 1))
    return 1000 * best


def main(args: Args) -> dict:
    import torch

    from agent.backends import LocalChatModel, resolve_adapter
    from agent.toolspec import role_tool_schemas
    from shopdesk.models import resolve_chat_model
    from shopdesk.settings import get_settings

    settings = get_settings()
    start = machine_load()
    print(f"start: load average {start['loadavg']}, {start['cpu_count']} cpus", file=sys.stderr)
    chat = LocalChatModel(model_path=resolve_chat_model(settings), adapter=resolve_adapter(settings, args.adapter),
                          torch_threads=args.threads)
    loaded = chat.loaded()
    tools = role_tool_schemas("customer")
    report = {"model": chat.model_path, "adapter": chat.adapter, "torch_threads": torch.get_num_threads(),
              "tools": len(tools), "start": start, "compile": compile_times(loaded, tools),
              "rows": [bench_prompt(chat, loaded, tools, text, args) for text in PROMPTS.values()]}
    report["end"] = machine_load()
    print(f"end: load average {report['end']['loadavg']}", file=sys.stderr)
    return report


def render(report: dict) -> str:
    c = report["compile"]
    lines = [f"load average at start {report['start']['loadavg']}, at end {report['end']['loadavg']}, "
             f"{report['start']['cpu_count']} cpus, {report['torch_threads']} torch threads; "
             f"adapter {report['adapter']}",
             f"xgrammar set-up for the tokenizer {c['tokenizer_setup_s']} s; compile of the customer role's grammar "
             f"({report['tools']} tools, new enums) {c['compile_s_median'] * 1000:.1f} ms median, "
             f"{c['compile_s_max'] * 1000:.1f} ms max; cache hit {c['cache_hit_s'] * 1e6:.0f} us",
             "tokens/s: best of the runs; mask ms/tok: the processor's time per token in the loop, and alone",
             f"{'prompt':45} {'tokens':>6} {'free tok/s':>10} {'grammar tok/s':>13} {'ratio':>6} {'mask ms/tok':>11} "
             f"{'alone':>6}"]
    for r in report["rows"]:
        lines.append(f"{r['prompt'][:45]:45} {r['new_tokens']:>6} {r['free_tokens_per_s']:>10} "
                     f"{r['grammar_tokens_per_s']:>13} {r['ratio']:>6} {r['processor_ms_per_token']:>11} "
                     f"{r['mask_only_ms_per_token']:>6}")
        lines.append(f"    reply under the grammar: {r['reply']!r}")
        lines.append(f"    reply without it (same number of tokens): {r['free_reply']!r}")
    return "\n".join(lines)


if __name__ == "__main__":
    ns = make_parser().parse_args()
    a = Args(tokens=ns.tokens, runs=ns.runs, threads=ns.threads, adapter=ns.adapter, json=ns.json)
    out = main(a)
    print(json.dumps(out, indent=2) if a.json else render(out))
