"""The data draw of recipe smollm2-135m-s13.yaml: whole synthesized conversations from the session-11 pools that neither
the s11 nor the s12 run had seen, drawn with weights leaning on the kinds the s12 candidate got wrong (journey vs
profile, Chinese churn and complaint questions, Chinese status questions that must stop after the look-up, the
category funnel, item and address changes, handoffs). Run from the repository root
with the pools in .data/s11/; writes .data/s13/*-sel.jsonl and prints what each draw holds.
"""

from __future__ import annotations

from pathlib import Path

from finetune.mixdata import conversation_ids, draw_conversations

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


def main() -> None:
    """Draw each pool's conversations and write them out."""
    seen = conversation_ids(POOLS / "mixcpu.jsonl", *sorted(Path(".data/s12").glob("*-sel.jsonl")))
    draw_conversations(POOLS, OUT, DRAWS, WEIGHTS, seen, seed=1313)


if __name__ == "__main__":
    main()
