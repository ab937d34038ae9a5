"""Dev-split scoring: does the model make the transcript's next tool call, given everything before it?

    shopdesk transcripts evaluate --transcripts OUT/data/dev.jsonl --adapter none --json        # base model
    shopdesk transcripts evaluate --transcripts OUT/data/dev.jsonl --adapter OUT --json         # tuned

For every assistant turn of a transcript that calls a tool, the prompt is the conversation up to that turn rendered
with the agent's chat template and tools (as the agent would send it); the model generates greedily and its first
`<tool_call>` is parsed with the agent's parser. Tool-name accuracy: the first call has the expected name.
Exact-argument accuracy: name and arguments equal the expected ones (strings compared case- and space-insensitively,
id lists as sets; an order id given as W123 or 123 for #W123 counts, since the tool normalises it; an optional argument
left out equals its schema default, since the tool then runs with that default). Keys the schema does not have never
match: the agent rejects such a call.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

from finetune.encoding import agent_template, prompt_for
from finetune.transcripts import Transcript, load_transcripts


def tool_call_turns(
    transcripts: list[Transcript], first_only: bool = False
) -> list[tuple[Transcript, int, dict[str, Any]]]:
    """(transcript, message index, expected first call) of each learnable assistant turn that calls a tool."""
    out = []
    for t in transcripts:
        for i, m in enumerate(t.messages):
            if m["role"] == "assistant" and m.get("tool_calls") and m.get("weight", 1) != 0:
                fn = m["tool_calls"][0]["function"]
                out.append((t, i, {"name": fn["name"], "arguments": fn["arguments"]}))
                if first_only:
                    break
    return out


def _norm(v: Any, key: str = "") -> Any:
    if isinstance(v, str):
        s = " ".join(v.lower().split())
        if key == "order_id":
            s = s.lstrip("#").lstrip("w")
        return s
    if isinstance(v, list):
        return sorted((_norm(x) for x in v), key=json.dumps)
    if isinstance(v, dict):
        return {k: _norm(x, k) for k, x in v.items()}
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _with_defaults(args: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    defaults = {k: p["default"] for k, p in ((schema or {}).get("properties") or {}).items() if "default" in p}
    return {**defaults, **args}


def arguments_equal(expected: dict[str, Any], actual: Any, schema: dict[str, Any] | None = None) -> bool:
    """Equal as the tool would take them (`schema`: the tool's JSON-schema parameters, for defaults)."""
    if not isinstance(actual, dict):
        return False
    return _norm(_with_defaults(expected, schema)) == _norm(_with_defaults(actual, schema))


def _schema(t: Transcript, name: str) -> dict[str, Any] | None:
    for spec in t.tools or []:
        fn = spec.get("function", spec)
        if fn.get("name") == name:
            return fn.get("parameters")
    return None


def load_model(base: str | None, adapter: str | None, threads: int | None = None):
    """(tokenizer, model) of a base model with an optional LoRA adapter, in eval mode (bfloat16 on a GPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if base is None:
        from shopdesk.models import resolve_chat_model

        base = resolve_chat_model()
    if threads:
        torch.set_num_threads(threads)
    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if cuda else torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    if cuda:
        model.to("cuda")
    model.eval()
    return tokenizer, model


class _StopAfterCall:
    """Stop once a call is closed, or as soon as the reply is clearly plain text (it will not be a call)."""

    def __init__(self, tokenizer, start: int):
        self.tokenizer, self.start = tokenizer, start

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        text = self.tokenizer.decode(input_ids[0, self.start:], skip_special_tokens=False).lstrip()
        if "</tool_call>" in text:
            return True
        probe = text[: len("<tool_call>")]
        return len(text) >= 4 and not "<tool_call>".startswith(probe) and "<tool_call>" not in text[:40]


def generate_call(tokenizer, model, prompt_ids: list[int], prefix_len: int, prefix_cache, max_new_tokens: int) -> str:
    """The greedy continuation of `prompt_ids` until its tool call ends, starting from a copy of the prefix cache."""
    import torch
    from transformers import StoppingCriteriaList

    ids = torch.tensor([prompt_ids], device=model.device)
    kwargs: dict[str, Any] = {}
    if prefix_cache is not None and prefix_len < len(prompt_ids):
        kwargs["past_key_values"] = copy.deepcopy(prefix_cache)
    stop = StoppingCriteriaList([_StopAfterCall(tokenizer, len(prompt_ids))])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id, stopping_criteria=stop,
                             **kwargs)
    return tokenizer.decode(out[0, len(prompt_ids):], skip_special_tokens=True)


def evaluate_transcripts(path: str | Path, *, base: str | None = None, adapter: str | None = None,
                         limit: int | None = None, batch_size: int = 1, threads: int | None = None,
                         first_only: bool = False,
                         max_new_tokens: int = 120, predictions_out: Path | None = None,
                         progress: bool = True) -> dict[str, Any]:
    """Score a model (+ adapter) on every tool-call turn of the transcripts at `path`."""
    import torch
    from tqdm import tqdm

    from agent.parsing import parse_tool_calls

    transcripts = load_transcripts(path)
    turns = tool_call_turns(transcripts, first_only)
    if limit:
        turns = turns[:limit]
    tokenizer, model = load_model(base, adapter, threads)
    template = agent_template()
    caches: dict[tuple[int, ...], Any] = {}
    rows, start = [], time.perf_counter()
    generated_tokens = 0
    sink = None
    if predictions_out:  # written as we go, so an interrupted run still leaves its scored turns
        predictions_out.parent.mkdir(parents=True, exist_ok=True)
        sink = predictions_out.open("w", encoding="utf-8")
    for t, i, expected in tqdm(turns, desc="evaluate", file=sys.stderr, disable=not progress):
        prompt = prompt_for(tokenizer, t, i, template)
        ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        head = [m for m in t.messages[:1] if m["role"] == "system"]
        head_text = tokenizer.apply_chat_template([{k: v for k, v in m.items() if k != "weight"} for m in head],
                                                  tools=t.tools, chat_template=template, tokenize=False)
        prefix = list(tokenizer(head_text, add_special_tokens=False)["input_ids"])
        cache = None
        if prefix and ids[: len(prefix)] == prefix:
            key = tuple(prefix)
            if key not in caches:  # the system turn and tool list, computed once per role
                with torch.no_grad():
                    caches[key] = model(input_ids=torch.tensor([prefix], device=model.device),
                                        use_cache=True).past_key_values
            cache = caches[key]
        text = generate_call(tokenizer, model, ids, len(prefix), cache, max_new_tokens)
        generated_tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
        _, calls = parse_tool_calls(text)
        got = calls[0] if calls else None
        name_ok = got is not None and got.name == expected["name"]
        args_ok = name_ok and got.error is None and arguments_equal(expected["arguments"], got.arguments,
                                                                    _schema(t, expected["name"]))
        rows.append({"conversation_id": t.conversation_id, "kind": t.meta.get("kind"), "lang": t.meta.get("lang"),
                     "turn": i, "expected": expected, "output": text,
                     "predicted": {"name": got.name, "arguments": got.arguments} if got else None,
                     "name_ok": name_ok, "arguments_ok": args_ok})
        if sink:
            sink.write(json.dumps(rows[-1], ensure_ascii=False, default=str) + "\n")
            sink.flush()
    if sink:
        sink.close()
    seconds = time.perf_counter() - start
    n = len(rows)
    summary: dict[str, Any] = {
        "transcripts": str(path), "base": base or "prepared SmolLM2", "adapter": adapter or "none",
        "tool_call_turns": n, "first_call_only": first_only,
        "tool_name_accuracy": round(sum(r["name_ok"] for r in rows) / n, 4) if n else None,
        "exact_argument_accuracy": round(sum(r["arguments_ok"] for r in rows) / n, 4) if n else None,
        "no_call_produced": sum(r["predicted"] is None for r in rows),
        "seconds": round(seconds, 1), "generated_tokens": generated_tokens,
        "by_tool": {}, "by_language": {},
    }
    for key, field in (("by_tool", lambda r: r["expected"]["name"]), ("by_language", lambda r: r["lang"] or "?")):
        groups: dict[str, list[dict]] = {}
        for r in rows:
            groups.setdefault(field(r), []).append(r)
        summary[key] = {k: {"n": len(v), "name": round(sum(r["name_ok"] for r in v) / len(v), 3),
                            "arguments": round(sum(r["arguments_ok"] for r in v) / len(v), 3)}
                        for k, v in sorted(groups.items())}
    return summary


def render_summary(s: dict[str, Any]) -> str:
    """An evaluation summary as readable lines."""
    lines = [(f"{s['tool_call_turns']} tool-call turns of {s['transcripts']} (adapter: {s['adapter']}), "
              f"{s['seconds']} s"),
             f"tool-name accuracy      {s['tool_name_accuracy']}",
             f"exact-argument accuracy {s['exact_argument_accuracy']}",
             f"no call produced        {s['no_call_produced']}"]
    for tool, v in s["by_tool"].items():
        lines.append(f"  {tool:34s} n={v['n']:3d} name={v['name']:.2f} args={v['arguments']:.2f}")
    return "\n".join(lines)
