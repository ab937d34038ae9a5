"""The data draw of recipe smollm2-135m-s12.yaml: whole synthesized conversations from the session-11 pools that its
run had not seen, drawn with weights leaning on the kinds the s11 candidate got wrong. Run from the repository root
with the pools in .data/s11/; writes .data/s12/*-sel.jsonl and prints what each draw holds.
"""

from __future__ import annotations

from pathlib import Path

from finetune.mixdata import conversation_ids, draw_conversations

POOLS = Path(".data/s11")
OUT = Path(".data/s12")
DRAWS = (("sample", 70), ("sampleb", 80), ("tau2", 35), ("tau2b", 45))
# (example kind, language or None for both): weight of a conversation holding it; a conversation takes its highest
WEIGHTS = {
    ("m-profile", None): 5, ("m-profile-more", None): 5, ("m-churn", "zh"): 5, ("m-churn-tier", "zh"): 5,
    ("m-churn", "en"): 2, ("m-churn-tier", "en"): 2, ("m-funnel", None): 3, ("m-lookup-customer", None): 4,
    ("m-insights", "zh"): 4, ("m-insights-more", "zh"): 3, ("m-journey", None): 0.7,
    ("product", None): 4, ("reviews", None): 3, ("recommend", None): 3,
    ("cancel", None): 3, ("cancel-refused", None): 4, ("cancel-it", None): 3, ("exchange", "zh"): 5,
    ("exchange", "en"): 2, ("modify-items", None): 3, ("status-lookup", "zh"): 3, ("status", "zh"): 2,
    ("status-confusable", None): 2, ("follow-up", "zh"): 3, ("address", None): 3, ("return", None): 2,
}


def main() -> None:
    """Draw each pool's conversations and write them out."""
    draw_conversations(POOLS, OUT, DRAWS, WEIGHTS, conversation_ids(POOLS / "mixcpu.jsonl"), seed=1212)


if __name__ == "__main__":
    main()
