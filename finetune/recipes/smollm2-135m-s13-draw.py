"""The data draw of recipe smollm2-135m-s13.yaml: whole synthesized conversations from the session-11 pools that neither
the s11 nor the s12 run had seen, drawn with weights leaning on the kinds the s12 candidate got wrong (journey vs
profile, Chinese churn and complaint questions, Chinese status questions that must stop after the look-up, the
category funnel, item and address changes, handoffs). Run from the repository root
with the pools in .data/s11/; writes .data/s13/*-sel.jsonl and prints what each draw holds.
"""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path

POOLS = Path(".data/s11")
OUT = Path(".data/s13")
DRAWS = (("sample", 40), ("sampleb", 45), ("tau2", 30), ("tau2b", 40))
# (example kind, language or None for both): weight of a conversation holding it; a conversation takes its highest
WEIGHTS = {
    ("m-profile", None): 3, ("m-profile-more", None): 3, ("m-journey", None): 3, ("m-churn", "zh"): 5,
    ("m-churn-tier", "zh"): 4, ("m-churn", "en"): 2, ("m-funnel", None): 4, ("m-lookup-customer", None): 4,
    ("m-insights", "zh"): 5, ("m-insights-more", "zh"): 4, ("reviews", None): 3, ("product", None): 2,
    ("status", "zh"): 5, ("status-lookup", "zh"): 5, ("status-confusable", "zh"): 4, ("status-confusable", "en"): 2,
    ("modify-items", None): 4, ("address", None): 4, ("handoff", None): 3, ("cancel-refused", None): 3,
    ("follow-up", "zh"): 3, ("return", None): 2, ("exchange", "zh"): 3,
}


def weight(kind: str, lang: str) -> float:
    """The weight of one example kind in one language."""
    return WEIGHTS.get((kind, lang), WEIGHTS.get((kind, None), 1))


def main() -> None:
    """Draw each pool's conversations and write them out."""
    rng = random.Random(1313)
    seen: set[str] = set()
    for path in [POOLS / "mixcpu.jsonl", *Path(".data/s12").glob("*-sel.jsonl")]:
        with open(path) as f:
            seen |= {json.loads(line)["meta"]["conversation_id"] for line in f}
    OUT.mkdir(parents=True, exist_ok=True)
    for name, n in DRAWS:
        convs: dict[str, list] = collections.defaultdict(list)
        with open(POOLS / f"{name}.jsonl") as f:
            for line in f:
                meta = json.loads(line)["meta"]
                if meta["conversation_id"] not in seen:
                    convs[meta["conversation_id"]].append((line, meta))
        ids = list(convs)
        weights = [max(weight(m["kind"], m["lang"]) for _, m in convs[i]) for i in ids]
        chosen: set[str] = set()
        while len(chosen) < n:
            chosen.add(rng.choices(ids, weights)[0])
        with open(OUT / f"{name}-sel.jsonl", "w") as f:
            for i in ids:
                if i in chosen:
                    f.writelines(line for line, _ in convs[i])
        kinds = collections.Counter((m["kind"], m["lang"]) for i in chosen for _, m in convs[i])
        print(name, n, kinds.most_common(25))


if __name__ == "__main__":
    main()
