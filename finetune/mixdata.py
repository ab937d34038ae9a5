"""Build a training mix against a fixed dev split and the eval cases (how the adapters' data is made).

    python -m finetune.mixdata --dev DEV.jsonl --out TRAIN.jsonl [--seed 0] [--no-merge-turns] [--max-tokens N] \
        FILE[:N] ...

Each FILE holds training examples as finetune.synthesize writes them (one per call of the model: the messages the
agent sent, and the reply to learn as the last message) and contributes all its conversations, or N of them drawn at
random (a conversation's examples stay together). Left out, and counted in the report:
- examples of a dev customer (the dev split measures customers never seen in training), of an eval case's customer,
  or naming one (a marketer asking about them);
- examples in which the person says what a dev conversation opens with, or anything an eval case says (any user
  message, compared with case, spaces and punctuation folded), so neither is seen verbatim;
- examples of the old format (more than one learnable reply, or one that is not the last message): they teach the
  paraphrased answers the agent now drops;
- with --max-tokens, sequences longer than that many tokens as the trainer renders them (a CPU budget: a prompt now
  holds the last two turns' rendered replies, and a marketer's tables run to thousands of tokens).
The eval cases are every JSONL file in agent/evalcases (single-turn and multi-turn cases).

With --merge-turns (the default), the examples of one turn are then trained as one sequence: within a turn each call
of the model sees the previous call's messages plus its call and result, so the later example's messages start with
the earlier one's, and a causal model computes the earlier reply's loss on exactly the context it had alone. The loss
is the same (the trainer averages over reply tokens), the shared context is computed once instead of once per call.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from finetune.prepare import dedup
from finetune.transcripts import Transcript, load_transcripts, write_transcripts

EVALCASES = Path(__file__).resolve().parent.parent / "agent" / "evalcases"


def prompt_key(text: str) -> str:
    """A message as compared with dev and eval prompts: case, spaces and punctuation (ASCII and CJK) folded."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(kept.split())


def user_messages(t: Transcript) -> list[str]:
    """The text of every user message of a transcript."""
    return [m.get("content") or "" for m in t.messages if m["role"] == "user"]


def first_user(t: Transcript) -> str:
    """The prompt key of a transcript's first user message ("" when it has none)."""
    found = user_messages(t)
    return prompt_key(found[0]) if found else ""


def case_prompts(folder: Path = EVALCASES) -> set[str]:
    """Everything the person types in the eval cases (every turn of every case file), as prompt_key folds it."""
    from finetune.synthesize import case_messages, eval_cases

    return {prompt_key(text) for case in eval_cases(folder) for text in case_messages(case)}


def is_single_target(t: Transcript) -> bool:
    """One learnable reply, and it is the last message (the format finetune.synthesize writes)."""
    learnable = [i for i, m in enumerate(t.messages) if m["role"] == "assistant" and m.get("weight", 1) != 0]
    return learnable == [len(t.messages) - 1]


def _key(m: dict) -> tuple:
    calls = [(tc["function"]["name"], json.dumps(tc["function"]["arguments"], sort_keys=True))
             for tc in m.get("tool_calls") or []]
    return m["role"], m.get("content") or "", tuple(calls), m.get("tool_call_id")


def merge_turns(examples: list[Transcript]) -> tuple[list[Transcript], int]:
    """Examples whose messages (reply included) begin the next example of the same conversation, folded into it with
    their reply learnable there (see the module docstring); returns the sequences and how many examples were folded.
    """
    by_conversation: dict[str, list[Transcript]] = defaultdict(list)
    for i, t in enumerate(examples):
        by_conversation[t.conversation_id or f"#{i}"].append(t)
    out: list[Transcript] = []
    folded = 0
    for group in by_conversation.values():
        group.sort(key=lambda t: t.meta.get("call", 0))
        carry: Transcript | None = None
        for t in group:
            if carry is not None and len(carry.messages) < len(t.messages) and all(
                    _key(a) == _key(b) for a, b in zip(carry.messages, t.messages, strict=False)):
                messages = [dict(m) for m in t.messages]
                for i, m in enumerate(carry.messages):  # every reply learnable in `carry` is learnable here too
                    if m["role"] == "assistant" and m.get("weight", 1) != 0:
                        messages[i].pop("weight", None)
                kinds = [carry.meta.get("target"), t.meta.get("target")]
                t = Transcript(messages=messages, tools=t.tools,
                               meta=dict(t.meta, targets=[*carry.meta.get("targets", kinds[:1]), kinds[1]]))
                folded += 1
            elif carry is not None:
                out.append(carry)
            carry = t
        if carry is not None:
            out.append(carry)
    return out, folded


def sequence_lengths(examples: list[Transcript], base: str | None = None) -> list[int]:
    """Tokens of each example as the trainer renders it (agent template, tools, all messages)."""
    from transformers import AutoTokenizer

    from finetune.encoding import agent_template, encode
    from shopdesk.models import resolve_chat_model

    tokenizer = AutoTokenizer.from_pretrained(base or resolve_chat_model())
    template = agent_template()
    return [len(encode(tokenizer, t, template, 10**9).input_ids) for t in examples]


def _conversations(examples: list[Transcript]) -> list[list[Transcript]]:
    groups: dict[str, list[Transcript]] = defaultdict(list)
    for i, t in enumerate(examples):
        groups[t.conversation_id or f"#{i}"].append(t)
    return list(groups.values())


def build(sources: list[tuple[Path, int | None]], dev: list[Transcript], *, seed: int,
          eval_prompts: set[str] = frozenset(), eval_customers: set[str] = frozenset(),
          merge: bool = False, max_tokens: int | None = None) -> tuple[list[Transcript], dict]:
    """Draw the training mix from `sources`, leaving out dev and eval prompts and customers; (mix, report)."""
    from finetune.synthesize import _NAMED_CUSTOMER

    rng = random.Random(seed)
    dev_customers = {t.customer_id for t in dev if t.customer_id}
    dev_prompts = {first_user(t) for t in dev}
    report: dict = {"sources": {}, "left_out_dev_customer": 0, "left_out_eval_customer": 0, "left_out_dev_prompt": 0,
                    "left_out_eval_prompt": 0, "left_out_old_format": 0}
    pool: list[Transcript] = []
    for path, n in sources:
        conversations = _conversations(load_transcripts(path))
        if n is not None and n < len(conversations):
            conversations = rng.sample(conversations, n)
        report["sources"][str(path)] = {"conversations": len(conversations),
                                        "examples": sum(len(c) for c in conversations)}
        for t in (t for c in conversations for t in c):
            prompts = {prompt_key(text) for text in user_messages(t)}
            named = {x for text in user_messages(t) for x in _NAMED_CUSTOMER.findall(text)}
            if not is_single_target(t):
                report["left_out_old_format"] += 1
            elif t.customer_id and t.customer_id in dev_customers:
                report["left_out_dev_customer"] += 1
            elif (t.customer_id and t.customer_id in eval_customers) or named & eval_customers:
                report["left_out_eval_customer"] += 1
            elif dev_prompts & prompts:
                report["left_out_dev_prompt"] += 1
            elif eval_prompts & prompts:
                report["left_out_eval_prompt"] += 1
            else:
                pool.append(t)
    pool, report["duplicates_removed"] = dedup(pool)
    report["examples"] = len(pool)
    report["conversations"] = len({t.conversation_id for t in pool})
    report["examples_by_task"] = dict(Counter(f"{t.meta.get('kind', '?')} / {t.meta.get('lang', '?')}"
                                              for t in pool).most_common())
    report["targets"] = dict(Counter(t.meta.get("target", "?") for t in pool).most_common())
    report["languages"] = dict(Counter(t.meta.get("lang", "?") for t in pool).most_common())
    report["roles"] = dict(Counter(t.meta.get("role", "?") for t in pool).most_common())
    if merge:
        pool, report["merged_into_the_next_call"] = merge_turns(pool)
    if max_tokens:
        lengths = sequence_lengths(pool)
        report["left_out_too_long"] = sum(n > max_tokens for n in lengths)
        pool = [t for t, n in zip(pool, lengths, strict=True) if n <= max_tokens]
        report["tokens"] = sum(n for n in lengths if n <= max_tokens)
    rng.shuffle(pool)
    report["written"] = len(pool)
    return pool, report


def main(argv: list[str] | None = None) -> None:
    """The command line: `python -m finetune.mixdata FILE[:N] ...`."""
    from finetune.synthesize import eval_customers

    ap = argparse.ArgumentParser(prog="python -m finetune.mixdata", description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", help="FILE or FILE:N (N conversations drawn at random)")
    ap.add_argument("--dev", type=Path, required=True, help="the dev split the adapter will be measured on")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", type=Path, default=EVALCASES,
                    help="folder of eval case files (*.jsonl) whose customers and prompts are left out of training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--merge-turns", action=argparse.BooleanOptionalAction, default=True,
                    help="train the calls of one turn as one sequence (same loss, shared context computed once)")
    ap.add_argument("--max-tokens", type=int, default=None,
                    help="leave out sequences longer than this many tokens (with the system turn and tool list)")
    a = ap.parse_args(argv)
    sources = []
    for s in a.sources:
        path, _, n = s.partition(":")
        sources.append((Path(path), int(n) if n else None))
    out, report = build(sources, load_transcripts(a.dev), seed=a.seed, eval_prompts=case_prompts(a.cases),
                        eval_customers=eval_customers(a.cases), merge=a.merge_turns,
                        max_tokens=a.max_tokens)
    write_transcripts(out, a.out)
    print(json.dumps(report, indent=2, ensure_ascii=False), file=sys.stderr)



def draw_conversations(pools: Path, out: Path, draws: Sequence[tuple[str, int]],
                       weights: Mapping[tuple[str, str | None], float], seen: set[str], seed: int,
                       current_tools: bool = False) -> None:
    """Draw whole conversations from synthesized pools (`pools`/NAME.jsonl, one example per line with its meta), `n`
    of each pool in `draws`, leaving out the conversation ids in `seen`; a conversation's weight is the highest of its
    examples' (kind, language) weights, else (kind, None), else 1. Writes `out`/NAME-sel.jsonl in the pool's order
    and prints what each draw holds. One random generator seeded with `seed` serves the draws in order, so a rerun
    writes the same files byte for byte (the recipes' draw scripts call this). With `current_tools`, each example's
    tool schemas are replaced by the agent's current ones for its role (a pool synthesized before a tool's signature
    changed would otherwise teach a prompt the agent no longer sends).
    """
    schemas = _role_schemas() if current_tools else {}

    def refreshed(line: str) -> str:
        if not schemas:
            return line
        row = json.loads(line)
        now = schemas[row["meta"]["role"]]
        row["tools"] = [now.get(t["function"]["name"], t) for t in row.get("tools") or []]
        return json.dumps(row, ensure_ascii=False) + "\n"

    def weight(kind: str, lang: str) -> float:
        return weights.get((kind, lang), weights.get((kind, None), 1))

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, n in draws:
        convs: dict[str, list] = defaultdict(list)
        with open(pools / f"{name}.jsonl") as f:
            for line in f:
                meta = json.loads(line)["meta"]
                if meta["conversation_id"] not in seen:
                    convs[meta["conversation_id"]].append((line, meta))
        ids = list(convs)
        chances = [max(weight(m["kind"], m["lang"]) for _, m in convs[i]) for i in ids]
        chosen: set[str] = set()
        while len(chosen) < n:
            chosen.add(rng.choices(ids, chances)[0])
        with open(out / f"{name}-sel.jsonl", "w") as f:
            for i in ids:
                if i in chosen:
                    f.writelines(refreshed(line) for line, _ in convs[i])
        kinds = Counter((m["kind"], m["lang"]) for i in chosen for _, m in convs[i])
        print(name, n, kinds.most_common(25))


def _role_schemas() -> dict[str, dict[str, dict]]:
    """The agent's tool schemas (OpenAI style) by role and tool name, as a session sends them."""
    from agent.toolspec import role_tool_schemas
    from tools.registry import ROLE_TOOLS

    return {role: {spec["function"]["name"]: spec for spec in role_tool_schemas(role)} for role in ROLE_TOOLS}


def conversation_ids(*paths: Path) -> set[str]:
    """The conversation ids of the examples in these JSONL files (what earlier runs saw)."""
    ids: set[str] = set()
    for path in paths:
        with open(path) as f:
            ids |= {json.loads(line)["meta"]["conversation_id"] for line in f}
    return ids

if __name__ == "__main__":
    main()
