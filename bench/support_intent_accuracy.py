"""Accuracy of the support-intent rule table (tools.analytics.intents.support_intent) on labelled support requests
that shopdesk did not write: Bitext's customer-support dataset (4,514 English requests, 27 intents labelled by its
authors; the copy in ../shared/datasets/bitext). A quality measurement, not a speed benchmark.

    python bench/support_intent_accuracy.py [--csv PATH] [--show N]

Bitext's intents that are one of shopdesk's map to it (cancel_order -> cancel, change_order and
change_shipping_address -> change order, complaint, get_refund and track_refund -> refund, track_order and
delivery_period -> order status); every other intent (accounts, invoices, newsletters, fees, the refund policy, ...)
asks for none of shopdesk's actions, so "question" or "other" is right for it. The rows alternate into two halves:
the rules were extended looking at the even rows (dev) only, so the odd rows (test) are the figure to quote.
Chinese has no labelled set here: its patterns are not measured by this script.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BITEXT = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "bitext" / \
    "Bitext_Sample_Customer_Support_Training_Dataset.csv"
MAPPED = {"cancel_order": "cancel", "change_order": "change order", "change_shipping_address": "change order",
          "complaint": "complaint", "get_refund": "refund", "track_refund": "refund", "track_order": "order status",
          "delivery_period": "order status"}
NO_ACTION = ("question", "other")


def correct(bitext_intent: str, predicted: str) -> bool:
    """Whether `predicted` is right for a request Bitext labels `bitext_intent`."""
    expected = MAPPED.get(bitext_intent)
    return predicted in NO_ACTION if expected is None else predicted == expected


def measure(rows: list[tuple[str, str]]) -> dict:
    """Accuracy over (text, Bitext intent) rows: on the mapped intents, on the others, overall, and per intent."""
    from tools.analytics.intents import support_intent

    per: dict[str, Counter] = {}
    hits = {"mapped": [0, 0], "others": [0, 0]}
    misses = []
    for text, intent in rows:
        got = support_intent(text)
        ok = correct(intent, got)
        per.setdefault(intent, Counter())[got] += 1
        part = hits["mapped" if intent in MAPPED else "others"]
        part[0] += ok
        part[1] += 1
        if not ok:
            misses.append((intent, got, text))
    total = [hits["mapped"][0] + hits["others"][0], hits["mapped"][1] + hits["others"][1]]
    return {"mapped": hits["mapped"], "others": hits["others"], "all": total, "per_intent": per, "misses": misses}


def main(argv: list[str] | None = None) -> dict:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=BITEXT, help="Bitext's CSV (columns instruction, intent)")
    ap.add_argument("--show", type=int, default=0, help="print this many misses of the test half")
    args = ap.parse_args(argv)
    if not args.csv.exists():
        raise SystemExit(f"{args.csv} does not exist: pass --csv with Bitext's customer-support CSV")
    df = pd.read_csv(args.csv, usecols=["instruction", "intent"])
    rows = list(zip(df["instruction"].astype(str), df["intent"].astype(str), strict=True))
    out = {"dev": measure(rows[0::2]), "test": measure(rows[1::2])}
    print(f"support intents on {args.csv.name} ({len(rows)} requests)")
    print("| half | mapped intents (shopdesk action) | other intents (question/other) | all |")
    print("|---|---|---|---|")
    for half, m in out.items():
        cells = [f"{m[k][0] / m[k][1]:.3f} ({m[k][0]}/{m[k][1]})" for k in ("mapped", "others", "all")]
        print(f"| {half} | " + " | ".join(cells) + " |")
    print("\ntest half, per Bitext intent: expected -> accuracy, most frequent predictions")
    for intent, counts in sorted(out["test"]["per_intent"].items()):
        n = sum(counts.values())
        ok = sum(c for got, c in counts.items() if correct(intent, got))
        print(f"  {intent:26s} -> {MAPPED.get(intent, 'question/other'):14s} {ok / n:.2f}  {counts.most_common(3)}")
    for intent, got, text in out["test"]["misses"][: args.show]:
        print(f"  miss: {intent} read as {got}: {text}")
    return out


if __name__ == "__main__":
    main()
