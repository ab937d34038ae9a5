"""The build-time sentiment and aspect rules, measured on hand-labelled reviews (English and Chinese)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.sentiment import analyze, evaluate_sentiment

LABELLED = Path(__file__).resolve().parent / "data" / "reviews_labelled.jsonl"


def test_accuracy_on_labelled_reviews():
    report = evaluate_sentiment(LABELLED)
    assert report["reviews"] >= 100
    # the Chinese lexicon was tuned on this set; English is VADER, whose figures on real reviews are in the README
    assert report["accuracy"] >= 0.85, report
    assert report["by_language"]["zh"]["reviews"] >= 20 and report["by_language"]["zh"]["accuracy"] >= 0.8


def test_negation_and_contrast():
    assert analyze("The sound is not good.").sentiment == "negative"
    assert analyze("Not bad at all, I'm not disappointed.").sentiment == "positive"
    assert analyze("Looked nice, but it stopped working after a week and support was useless.").sentiment == "negative"
    assert analyze("声音不好，很失望。").sentiment == "negative"
    assert analyze("画面清晰，非常满意。").sentiment == "positive"


def test_aspects_carry_polarity_and_quote():
    a = analyze("The battery life is excellent. The screen is dim and blurry. Delivery was quick and easy.")
    got = {m.aspect: m.polarity for m in a.aspects}
    assert got["battery"] == 1 and got["screen"] == -1 and got["delivery"] == 1
    quote = next(m.quote for m in a.aspects if m.aspect == "screen")
    assert "dim" in quote
    zh = {m.aspect: m.polarity for m in analyze("续航很给力，但是物流太慢了。").aspects}
    assert zh == {"battery": 1, "delivery": -1}


def test_chinese_old_means_worn_only_as_a_word():
    # "旧" alone is in 依旧/仍旧 ("still"): only 陈旧, 老旧, 破旧 and 旧了 are complaints
    assert analyze("依旧很好用").sentiment == "positive"
    assert analyze("房间很旧了").sentiment == "negative"


@pytest.mark.parametrize("text, expected", [
    ("它的快递单号是多少？", "neutral"),  # 快递 is a courier (the walk of session 21 read this question as praise)
    ("快递很快，包装也好", "positive"),  # 快 on its own is still "fast"
    ("好像有点贵", "negative"),  # 好像 "seems" is no praise
    ("差不多，一般吧", "neutral"),
    ("有没有好用的无线耳机", "positive"),  # 有没有 asks "is there"; its 没 negates nothing
    ("这个耳机好不好用", "neutral"),  # 好不好 is a question: neither 好 nor 不好
])
def test_chinese_compounds_that_hold_a_sentiment_character_but_no_sentiment(text, expected):
    assert analyze(text, kind="message").sentiment == expected  # the lexicon alone, as support messages get it


@pytest.mark.parametrize("text, expected", [
    ("用了三天就开不了机了，客服也不理人。", "negative"),
    ("电池只能撑两个小时。", "negative"),
    ("做工扎实，第二天就到了。", "positive"),
])
def test_a_chinese_review_the_lexicon_finds_nothing_in_gets_the_review_model(text, expected):
    assert analyze(text, kind="message").sentiment == "neutral"  # no lexicon word
    assert analyze(text).sentiment == expected


def test_a_chinese_support_question_is_no_complaint():
    # The review model learned that "到哪了" comes from unhappy reviewers; a support chat asks it neutrally.
    assert analyze("我的订单到哪了？").sentiment == "negative"
    assert analyze("我的订单到哪了？", kind="message").sentiment == "neutral"


def test_the_review_model_reads_the_ngrams_scikit_learn_trained_on():
    from sklearn.feature_extraction.text import CountVectorizer

    from index.zh_model import logit, ngrams

    analyzer = CountVectorizer(analyzer="char", ngram_range=(1, 2), binary=True).build_analyzer()
    for text in ("音质很好  ，还会再买！", "Wi-Fi 连接\t断开", "好"):
        assert ngrams(text) == set(analyzer(text))
    assert logit("画面清晰，非常满意。") > 1 > -1 > logit("质量很差，用了两周就坏了。")


def test_a_support_question_asks_and_praises_nothing():
    assert analyze("Any good wireless earbuds under $80?").sentiment == "positive"  # VADER reads "good"
    assert analyze("Any good wireless earbuds under $80?", kind="message").sentiment == "neutral"
    assert analyze("有没有好用的无线耳机？", kind="message").sentiment == "neutral"
    assert analyze("这个耳机好用吗", kind="message").sentiment == "neutral"
    # a complaint put as a question stays one, and praise outside the question still counts
    assert analyze("Why is my order still broken and late?", kind="message").sentiment == "negative"
    assert analyze("Thanks, that was great! Can I also order a case?", kind="message").sentiment == "positive"
