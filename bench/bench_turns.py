"""Turn time of the in-process agent over the eval cases: the old decode path (every prompt computed from scratch,
one decode step per token) next to the current one (prompt-prefix KV reuse + grammar jump-forward) on each runtime
asked for (transformers fp32; llama.cpp on the same weights as GGUF), measured in the same run, with 1 and with 4
conversations at once.

    python bench/bench_turns.py                       # every shipped eval case, both paths, 1 and 4 at once
    python bench/bench_turns.py --limit 24 --json     # an even spread of 24 cases over the kinds
    python bench/bench_turns.py --limit 24 --runtimes transformers llamacpp-f32 llamacpp-f16
    python bench/bench_turns.py --limit 24 --skip-old --two-calls   # against a model call after every look-up
    python bench/bench_turns.py --limit 24 --skip-old --one-slot    # against one model call at a time
    python bench/bench_turns.py --skip-old --spin-count 10000    # the engine's OpenMP spin count vs libgomp's own
    python bench/bench_turns.py --skip-old --no-drafts           # drafted tokens checked in the pass, vs not
    python bench/bench_turns.py --skip-old --prefill-chunk 0 --at-once 4   # prompts in one pass (as up to
                                                               # session 33) against 128-token passes, 4 at once
    python bench/bench_turns.py --skip-old --think-s 2 --multi-turn   # 2 s of reading before each later turn

Prints p50/p95 turn seconds (typed turns: what a person waits for), tokens computed vs reused from the prefix
cache, and how many cases made different tool calls on the two paths (greedy decoding: it should be 0).
Targets: p50 <= 2 s and p95 <= 4 s with one conversation; p95 <= 6 s with 4 at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGETS = {"p50": 2.0, "p95": 4.0, "p95_concurrent": 6.0}
_OPENING = threading.Lock()


def one_at_a_time_opening(templates):
    """Each case copies its store template and opens it (running the migrations), and alembic's migration context
    is process-global: with 4 cases at once the openings take turns; the conversations themselves do not.
    """
    fresh = templates.fresh

    @contextmanager
    def opened(kind: str, case_id: str):
        with ExitStack() as stack:
            with _OPENING:
                value = stack.enter_context(fresh(kind, case_id))
            yield value

    templates.fresh = opened
    return templates


def reading(seconds: float) -> None:
    """Each conversation waits `seconds` before every turn after its first (a person reading the reply and typing)."""
    from agent.evaluate import _Player

    play = _Player.play

    def after_reading(self, index, step):
        if index:
            time.sleep(seconds)
        return play(self, index, step)

    _Player.play = after_reading


def spread(cases: list, limit: int | None) -> list:
    """At most `limit` cases, taken round-robin over the kinds so that every kind is represented."""
    if not limit or limit >= len(cases):
        return cases
    by_kind: dict[str, list] = {}
    for c in cases:
        by_kind.setdefault(c.kind, []).append(c)
    out: list = []
    while len(out) < limit:
        for group in by_kind.values():
            if group and len(out) < limit:
                out.append(group.pop(0))
    return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 3)


def run(cases: list, templates, model, concurrency: int) -> dict:
    from agent.evaluate import run_case

    loaded = model.loaded()
    before = loaded.stats()
    cpu0 = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda c: run_case(c, templates, lambda _c: model), cases))
    wall = time.perf_counter() - started
    after = loaded.stats()
    cpu = time.process_time() - cpu0
    turns = [s for r in results for s in r.turn_seconds]
    return {
        "concurrency": concurrency, "cases": len(results), "turns": len(turns),
        "p50_s": percentile(turns, 0.5), "p95_s": percentile(turns, 0.95),
        "mean_s": round(statistics.mean(turns), 3) if turns else None,
        "crashed": [r.id for r in results if r.error],
        "task_success": round(sum(r.success for r in results) / len(results), 4), "wall_s": round(wall, 1),
        "prefix_tokens_reused": after["reused_tokens"] - before["reused_tokens"],
        "prompt_tokens_computed": after["computed_tokens"] - before["computed_tokens"],
        "pass_s": round(after["pass_seconds"] - before["pass_seconds"], 1),
        "this_process_cpu_s": round(cpu, 1),
        "rows_per_pass": round((after["rows"] - before["rows"]) / max(1, after["passes"] - before["passes"]), 2),
        "calls": {r.id: [(c["name"], c["arguments"]) for c in r.tool_calls] for r in results},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=None, help="an even spread of this many cases (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--skip-old", action="store_true", help="measure only the current path(s)")
    p.add_argument("--runtimes", nargs="+", default=["transformers"],
                   choices=["transformers", "llamacpp-f32", "llamacpp-f16"],
                   help="in-process runtimes to measure on the current path (llama.cpp: the same weights as GGUF)")
    p.add_argument("--weights", nargs="+", default=["fp32-onednn"],
                   choices=["fp32-row-major", "fp32", "fp32-onednn", "bf16-onednn", "int8", "int8-mixed"],
                   help="transformers weights to measure on the current path (Settings.local_weights)")
    p.add_argument("--int8-adapter", default=None,
                   help="the adapter for the int8 weights (default: the one fp32 uses), e.g. one trained with "
                        "finetune --int8_aware")
    p.add_argument("--one-slot", action="store_true",
                   help="also measure one model call at a time (sessions 8-17: one lock per model) next to a slot per "
                        "core")
    p.add_argument("--two-calls", action="store_true",
                   help="also measure session 17's path: the model called again after every look-up, its words cut "
                        "(now a look-up that answers a message asking for no change ends the turn)")
    p.add_argument("--in-thread", action="store_true",
                   help="also measure the default decode path on the calling threads, in this process (session 26), "
                        "next to the engine process")
    p.add_argument("--spin-count", type=int, nargs="+", default=[],
                   help="also measure the engine process with these OpenMP spin counts (GOMP_SPINCOUNT; 0 sleeps at "
                        "once, as OMP_WAIT_POLICY=PASSIVE does) next to libgomp's own (300,000)")
    p.add_argument("--think-s", type=float, default=0.0,
                   help="seconds a person reads and types before each turn after a conversation's first (default 0: "
                        "the next message comes as soon as the reply is complete)")
    p.add_argument("--multi-turn", action="store_true", help="only the conversations of more than one turn")
    p.add_argument("--prefill-chunk", type=int, nargs="+", default=[],
                   help="also measure the engine with prompts computed in passes of at most this many tokens while "
                        "other calls decode (LocalChatModel.prefill_chunk, 128 by default since session 34; 0: "
                        "one pass)")
    p.add_argument("--at-once", type=int, nargs="+", default=[1, 4],
                   help="how many conversations at once to measure each path with (default: 1 and 4)")
    p.add_argument("--no-drafts", action="store_true",
                   help="also measure the engine with one chosen token a pass (sessions up to 32), next to drafted "
                        "tokens checked in the pass (agent.drafts, session 33)")
    p.add_argument("--unbatched", action="store_true",
                   help="also measure oneDNN weights with a transformers forward pass per call (session 25)")
    p.add_argument("--cat-cache", action="store_true",
                   help="also measure transformers' own KV cache, which grows by torch.cat every step (sessions up "
                        "to 23), next to the one that grows in place")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import tempfile

    from agent.backends import LocalChatModel, resolve_adapter
    from agent.cli import DEFAULT_CASES
    from agent.evaluate import StoreTemplates, load_cases
    from agent.session import AgentSession
    from shopdesk.models import resolve_chat_model
    from shopdesk.settings import Settings

    settings = Settings()
    cases = load_cases(*DEFAULT_CASES)
    if args.multi_turn:
        cases = [c for c in cases if len(c.turns) > 1]
    cases = spread(cases, args.limit)
    if args.think_s:
        reading(args.think_s)
    base = dict(model_path=resolve_chat_model(settings), adapter=resolve_adapter(settings),
                torch_threads=args.threads or settings.torch_threads)
    paths = []
    if args.two_calls:
        paths.append(("model called after every look-up (session 17), transformers fp32", {}, False))
    if args.one_slot:
        paths.append(("one model call at a time (session 17), transformers fp32", {"slots": 1}))
    for runtime in args.runtimes:
        if runtime == "transformers":
            for weights in args.weights:
                if weights == "fp32":
                    paths.append(("transformers fp32, MKL, weights column-major (sessions 20-23)",
                                  {"weights": weights}))
                elif weights == "fp32-row-major":
                    paths.append(("transformers fp32, MKL, weights row-major (session 19)",
                                  {"weights": weights}))
                elif weights == "fp32-onednn":
                    paths.append(("current, transformers fp32, oneDNN, fused weights, batched passes, drafted tokens "
                                  "checked, prompts in passes of 128 while others decode, in an engine process "
                                  "(session 34)", {"weights": weights, "engine": True}))
                    for spin in args.spin_count:
                        paths.append((f"the same engine, OpenMP spin count {spin:,} (session 30)",
                                      {"weights": weights, "engine": True, "spin": spin}))
                elif weights == "bf16-onednn":
                    paths.append(("transformers, the layers' Linear weights bfloat16 (packed), the rest fp32, oneDNN, "
                                  "fused weights, batched passes, in an engine process (session 32)",
                                  {"weights": weights, "engine": True}))
                else:
                    adapter = args.int8_adapter or base["adapter"]
                    paths.append((f"current, transformers {weights}, adapter {Path(adapter).name}",
                                  {"weights": weights, "adapter": adapter}))
        else:
            paths.append((f"current, llama.cpp {runtime.split('-')[1]} (same loop)",
                          {"runtime": "llamacpp", "gguf_type": runtime.split("-")[1]}))
    for chunk in args.prefill_chunk:
        paths.append((f"the same engine, prompts in passes of at most {chunk} tokens while other calls decode "
                      "(0: one pass, as up to session 33)",
                      {"weights": "fp32-onednn", "engine": True, "prefill_chunk": chunk}))
    if args.no_drafts:
        paths.append(("the same engine, no drafted tokens: one chosen token a pass (sessions up to 32)",
                      {"weights": "fp32-onednn", "engine": True, "drafts": False}))
    if args.in_thread:
        paths.append(("the same on the conversations' threads, in this process (session 26)",
                      {"weights": "fp32-onednn"}))
    if args.unbatched:
        paths.append(("transformers fp32, oneDNN Linear layers, a pass per call and slot (session 25)",
                      {"weights": "fp32-onednn", "batched": False}))
    if args.cat_cache:
        paths.append(("transformers fp32, oneDNN, KV cache grown by torch.cat (session 23)",
                      {"weights": "fp32-onednn", "growing_cache": False}))
    if not args.skip_old:
        paths.insert(0, ("old (no reuse, a step per token)", {"prefix_cache": False, "jump_forward": False}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="shopdesk-bench-") as tmp:
        templates = one_at_a_time_opening(StoreTemplates(Path(tmp), settings, progress=False))
        for kind in sorted({c.store for c in cases}):
            templates.template(kind)  # built once, before any thread needs it
        for label, options, *one_call in paths:
            # the sessions run_case opens read the class attribute
            AgentSession.one_call_after_read = one_call[0] if one_call else True
            options = dict(options)
            slots = options.pop("slots", None)
            spin = options.pop("spin", None)
            model = LocalChatModel(**{**base, **options})
            # the engine process starts with this environment
            with mock.patch.dict(os.environ, {} if spin is None else {"GOMP_SPINCOUNT": str(spin)}):
                loaded = model.loaded()
            loaded.clear_prefixes()
            if loaded.model is not None:  # the paths share one loaded model: each sets its own slots
                loaded.set_slots(slots)
            for concurrency in args.at_once:
                print(f"{label}, {concurrency} at once: {len(cases)} cases ...", file=sys.stderr, flush=True)
                rows.append({"path": label, **run(cases, templates, model, concurrency)})
            if model.engine:  # its process stops: an idle engine must not take the next path's cores
                model.loaded_models.clear()
    calls = [r.pop("calls") for r in rows]
    differ = sorted({cid for c in calls[1:] for cid, v in c.items() if v != calls[0].get(cid)})
    report = {"cases": len(cases), "think_s": args.think_s, "torch_threads": base["torch_threads"] or os.cpu_count(),
              "rows": rows, "cases_with_different_calls": differ, "targets": TARGETS}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    head = ("path", "at once", "p50 s", "p95 s", "mean s", "success", "reused tok", "computed tok", "calls a pass",
            "in passes s", "CPU s here", "wall s")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(x) for x in (r["path"], r["concurrency"], r["p50_s"], r["p95_s"], r["mean_s"],
                                          r["task_success"], r["prefix_tokens_reused"], r["prompt_tokens_computed"],
                                          r["rows_per_pass"], r["pass_s"], r["this_process_cpu_s"], r["wall_s"])))
    for new1 in rows[2::2] if (not args.skip_old or args.two_calls or args.one_slot) else []:
        old = rows[0]
        print(f"{new1['path']}: p50 vs {old['path']} {new1['p50_s'] / old['p50_s']:.2f}; "
              f"p95 vs it {new1['p95_s'] / old['p95_s']:.2f}")
    if args.two_calls or args.one_slot:
        old4, new4 = rows[1], rows[-1]
        print(f"4 at once: p95 {new4['p95_s']} vs {old4['p95_s']} s = {new4['p95_s'] / old4['p95_s']:.2f}")
    if args.spin_count:
        own = [r for r in rows if r["path"].startswith("current, transformers fp32, oneDNN")]
        for spin in args.spin_count:
            for a, b in zip([r for r in rows if f"spin count {spin:,}" in r["path"]], own, strict=True):
                print(f"{a['concurrency']} at once, spin count {spin:,} vs libgomp's own: "
                      f"p50 {a['p50_s'] / b['p50_s']:.2f}, p95 {a['p95_s'] / b['p95_s']:.2f}, "
                      f"in passes {a['pass_s'] / b['pass_s']:.2f}, "
                      f"CPU here {a['this_process_cpu_s'] / b['this_process_cpu_s']:.2f}")
        for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
            if os.environ.get(name):
                print(f"note: {name}={os.environ[name]} is set here, so the default path is not libgomp's own")
    judged = next((r["path"] for r in rows if r["path"].startswith("current")), rows[0]["path"])
    cur1 = next((r for r in rows if r["path"] == judged and r["concurrency"] == 1), None)
    cur4 = next((r for r in rows if r["path"] == judged and r["concurrency"] == 4), None)
    print(f"judged on the first current path: {judged}")
    if cur1 is not None:
        print(f"targets: p50 {cur1['p50_s']} / {TARGETS['p50']} s = {cur1['p50_s'] / TARGETS['p50']:.2f}; "
              f"p95 {cur1['p95_s']} / {TARGETS['p95']} s = {cur1['p95_s'] / TARGETS['p95']:.2f}")
    if cur4 is not None:
        print(f"target: p95 with 4 at once {cur4['p95_s']} / {TARGETS['p95_concurrent']} s = "
              f"{cur4['p95_s'] / TARGETS['p95_concurrent']:.2f}")
    print(f"cases whose tool calls differ between runs: {len(differ)} {differ[:10]}")


if __name__ == "__main__":
    main()
