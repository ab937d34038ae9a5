"""The data draw of recipe smollm2-135m-s14.yaml: whole synthesized conversations from the session-11 pools that none
of the s11, s12 and s13 runs had seen, drawn with weights leaning on what the shipped s13 adapter still got wrong on
the 122 eval cases: a profile against a journey question (Chinese profiles above all), a segment's most valuable
members against a churn ranking, the Chinese funnel and churn-by-tier questions, a follow-up that names only a new
category ("电视呢？"), Chinese exchanges (s13 proposed a return), follow-ups after a status answer, product and
review questions, returns of several items. The tool schemas are the agent's current ones (when the run was made,
cancel_pending_order's reason was optional; it is required again since 7924f2a, so a rerun today writes the schema
the pools already hold). Run from the repository root with the pools in .data/s11/ and the earlier draws in
.data/s12/ and .data/s13/ (smollm2-135m-s13-draw.py rewrites the latter byte for byte); writes .data/s14/*-sel.jsonl
and prints what each draw holds.
"""

from __future__ import annotations

from pathlib import Path

from finetune.mixdata import conversation_ids, draw_conversations

POOLS = Path(".data/s11")
OUT = Path(".data/s14")
DRAWS = (("sample", 40), ("sampleb", 45), ("tau2", 30), ("tau2b", 40))
# (example kind, language or None for both): weight of a conversation holding it; a conversation takes its highest
WEIGHTS = {
    ("m-profile", "zh"): 6, ("m-profile", "en"): 3, ("m-profile-more", None): 4, ("m-journey", None): 5,
    ("m-lookup-segment", None): 5, ("m-lookup-customer", None): 3, ("m-funnel", "zh"): 6, ("m-funnel", "en"): 3,
    ("m-churn-tier", "zh"): 6, ("m-churn-tier", "en"): 3, ("m-churn", None): 3, ("m-insights-more", "zh"): 6,
    ("m-insights-more", "en"): 3, ("exchange", "zh"): 6, ("exchange", "en"): 3, ("follow-up", "zh"): 4,
    ("reviews", None): 4, ("product", None): 3, ("return", None): 3, ("cancel", None): 3, ("cancel-it", None): 3,
    ("status-confusable", "zh"): 3, ("modify-items", None): 3, ("address", None): 2, ("handoff", None): 2,
}


def main() -> None:
    """Draw each pool's conversations and write them out."""
    earlier = [*sorted(Path(".data/s12").glob("*-sel.jsonl")), *sorted(Path(".data/s13").glob("*-sel.jsonl"))]
    if len(earlier) != 8:
        raise SystemExit("needs the s12 and s13 draws (.data/s12/*-sel.jsonl, .data/s13/*-sel.jsonl): run "
                         "finetune/recipes/smollm2-135m-s13-draw.py first")
    seen = conversation_ids(POOLS / "mixcpu.jsonl", *earlier)
    draw_conversations(POOLS, OUT, DRAWS, WEIGHTS, seen, seed=1414, current_tools=True)


if __name__ == "__main__":
    main()
