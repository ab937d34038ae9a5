"""The data draw of recipe smollm2-135m-s16.yaml: whole conversations from the session-16 pools (.data/s16/sample.jsonl
and tau2.jsonl, synthesized with today's tools and phrases), drawn with weights leaning on what the shipped s13 adapter
still got wrong on the 122 eval cases in session 15: Chinese profile questions that say "情况" (it answered with the
journey), the Chinese funnel asked as "转化率" per stage, high-value customers at churn risk in Chinese, a segment's
most valuable members (it ranked churn), review searches (vLLM-CPU answered one with the funnel), and cancellations that
give no reason (the tool asks why; the pools before session 16 held none). Run from the repository root; writes
.data/s16/*-sel.jsonl and prints what each draw holds.
"""

from __future__ import annotations

from pathlib import Path

from finetune.mixdata import draw_conversations

POOLS = OUT = Path(".data/s16")
DRAWS = (("sample", 80), ("tau2", 50))
# (example kind, language or None for both): weight of a conversation holding it; a conversation takes its highest
WEIGHTS = {
    ("m-profile", "zh"): 6, ("m-profile", "en"): 3, ("m-profile-more", None): 4, ("m-journey", None): 4,
    ("m-lookup-segment", None): 5, ("m-lookup-customer", None): 2, ("m-funnel", "zh"): 6, ("m-funnel", "en"): 3,
    ("m-churn-tier", "zh"): 6, ("m-churn-tier", "en"): 3, ("m-churn", None): 2, ("m-reviews", None): 4,
    ("m-insights", None): 3, ("m-insights-more", None): 3, ("cancel-no-reason", None): 6, ("exchange", "zh"): 3,
    ("follow-up", None): 3, ("reviews", None): 3, ("product", None): 2, ("return", None): 3, ("cancel", None): 2,
    ("cancel-it", None): 2, ("status-confusable", None): 3, ("modify-items", None): 3, ("address", None): 2,
    ("handoff", None): 2,
}


def main() -> None:
    """Draw each pool's conversations and write them out."""
    draw_conversations(POOLS, OUT, DRAWS, WEIGHTS, set(), seed=1616, current_tools=True)


if __name__ == "__main__":
    main()
