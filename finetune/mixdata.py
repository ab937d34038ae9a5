"""Build a training mix against a fixed dev split (how the shipped adapter's data was made).

    python -m finetune.mixdata --dev DEV.jsonl --out TRAIN.jsonl [--first-turn-share 0.75] [--seed 0] FILE[:N] ...

Each FILE contributes all its conversations, or N drawn at random. Conversations of a dev customer, and
conversations that open with the same user message as a dev conversation or a shipped eval case (a templated prompt
the model would otherwise have seen verbatim, with its answer), are left out, so the dev and eval figures measure
generalisation. A share of
the rest is cut after its first learnable assistant turn (a reply or tool call: the cheapest tokens to train on a
CPU); the others keep their first two, so answers written from tool results are still trained. A conversation that
proposes a write (return, exchange, cancel, address change) is never cut before that proposal.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

from finetune.prepare import dedup
from finetune.train import truncate_turns
from finetune.transcripts import Transcript, load_transcripts, write_transcripts


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def first_user(t: Transcript) -> str:
    for m in t.messages:
        if m["role"] == "user":
            return _norm(m.get("content") or "")
    return ""


def case_prompts(path: Path) -> set[str]:
    """The opening user messages of eval cases (agent/evalcases/cases.jsonl), normalised as first_user does."""
    from agent.evaluate import load_cases

    return {_norm(case.turns[0]) for case in load_cases(path)}


def turns_through_write(t: Transcript) -> int:
    """How many learnable assistant turns run up to and including the first proposed write (cancel, return, ...);
    0 when the conversation proposes none. A cut before it would teach the lookup but never the change asked for."""
    from tools.orders import WRITE_TOOLS

    seen = 0
    for m in t.messages:
        if m["role"] == "assistant" and m.get("weight", 1) != 0:
            seen += 1
            if any(tc["function"]["name"] in WRITE_TOOLS for tc in m.get("tool_calls") or []):
                return seen
    return 0


def build(sources: list[tuple[Path, int | None]], dev: list[Transcript], *, first_turn_share: float,
          seed: int, eval_prompts: set[str] = frozenset()) -> tuple[list[Transcript], dict]:
    rng = random.Random(seed)
    dev_customers = {t.customer_id for t in dev if t.customer_id}
    dev_prompts = {first_user(t) for t in dev}
    report: dict = {"sources": {}, "left_out_dev_customer": 0, "left_out_dev_prompt": 0, "left_out_eval_prompt": 0}
    pool: list[Transcript] = []
    for path, n in sources:
        found = load_transcripts(path)
        if n is not None and n < len(found):
            found = rng.sample(found, n)
        report["sources"][str(path)] = len(found)
        for t in found:
            if t.customer_id and t.customer_id in dev_customers:
                report["left_out_dev_customer"] += 1
            elif first_user(t) in dev_prompts:
                report["left_out_dev_prompt"] += 1
            elif first_user(t) in eval_prompts:
                report["left_out_eval_prompt"] += 1
            else:
                pool.append(t)
    pool, report["duplicates_removed"] = dedup(pool)
    rng.shuffle(pool)
    out = [truncate_turns(t, max(1 if rng.random() < first_turn_share else 2, turns_through_write(t))) for t in pool]
    report["written"] = len(out)
    report["kinds"] = dict(Counter(t.meta.get("kind", "?") for t in out).most_common())
    return out, report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m finetune.mixdata", description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", help="FILE or FILE:N (N conversations drawn at random)")
    ap.add_argument("--dev", type=Path, required=True, help="the dev split the adapter will be measured on")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", type=Path, default=Path(__file__).parent.parent / "agent" / "evalcases" / "cases.jsonl",
                    help="eval cases whose opening prompts are left out of training")
    ap.add_argument("--first-turn-share", type=float, default=0.75)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    sources = []
    for s in a.sources:
        path, _, n = s.partition(":")
        sources.append((Path(path), int(n) if n else None))
    out, report = build(sources, load_transcripts(a.dev), first_turn_share=a.first_turn_share, seed=a.seed,
                        eval_prompts=case_prompts(a.cases))
    write_transcripts(out, a.out)
    print(json.dumps(report, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
