"""Relevance evaluation: nDCG@10 and recall@10 of vector-only, BM25-only and hybrid ranking on a labelled set.

The labelled set (tests/data/relevance.jsonl) grades products by title (0-2) so it survives id changes; titles are
resolved to ids through the index at evaluation time and unresolved titles are reported, not ignored silently.

    shopdesk search evaluate --json
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from index.search import Filters, SearchIndex
from index.text import normalize
from shopdesk.output import UserError

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "relevance.jsonl"
MODES = ("vector", "bm25", "hybrid")


class ModeScores(BaseModel):
    ndcg_at_10: float
    recall_at_10: float
    by_kind: dict[str, dict[str, float]] = Field(default_factory=dict, description="kind -> {ndcg, recall}")


class EvaluationReport(BaseModel):
    queries: int
    labels: int = Field(description="graded (query, product) labels resolved to ids")
    unresolved_titles: list[str] = Field(default_factory=list)
    results: dict[str, ModeScores]
    per_query: list[dict[str, Any]] = Field(default_factory=list)


def load_relevance(path: Path) -> list[dict[str, Any]]:
    """Rows {"query", "kind", "relevant": {title: grade}}; a clear error names the line that is wrong."""
    if not path.is_file():
        raise UserError(f"relevance set {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}, line {n}: not JSON ({exc.msg})") from exc
        if not isinstance(row.get("query"), str) or not row["query"].strip():
            raise UserError(f"{path}, line {n}: field 'query' must be a non-empty string")
        rel = row.get("relevant")
        if not isinstance(rel, dict) or not rel:
            raise UserError(f"{path}, line {n}: field 'relevant' must map product titles to grades 1-2")
        for title, grade in rel.items():
            if grade not in (0, 1, 2):
                raise UserError(f"{path}, line {n}: grade of {title!r} must be 0, 1 or 2, got {grade!r}")
        rows.append({"line": n, "kind": row.get("kind", "other"), **row})
    return rows


def dcg(grades: list[int]) -> float:
    """Discounted cumulative gain of graded results in rank order."""
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG@k of a ranking against graded relevance labels."""
    ideal = dcg(sorted(relevant.values(), reverse=True)[:k])
    return dcg([relevant.get(pid, 0) for pid in ranked[:k]]) / ideal if ideal else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    """The share of relevant products found in the top k."""
    wanted = {pid for pid, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def evaluate(index: SearchIndex, path: Path = DEFAULT_SET, k: int = 10, details: bool = False) -> EvaluationReport:
    """nDCG@k and recall@k of each search mode over a labelled relevance set."""
    rows = load_relevance(path)
    by_title: dict[str, list[str]] = {}
    for meta in index.product_metadata():
        by_title.setdefault(normalize(meta["title"]).strip(), []).append(meta["product_id"])
    unresolved: set[str] = set()
    sums = {m: {"ndcg": [], "recall": []} for m in MODES}
    kinds: dict[str, dict[str, dict[str, list[float]]]] = {}
    per_query = []
    labels = 0
    used = 0
    for row in rows:
        relevant: dict[str, int] = {}
        for title, grade in row["relevant"].items():
            ids = by_title.get(normalize(title).strip())
            if not ids:
                unresolved.add(title)
                continue
            for pid in ids:
                relevant[pid] = max(relevant.get(pid, 0), grade)
        if not any(g > 0 for g in relevant.values()):
            continue
        used += 1
        labels += len(relevant)
        entry = {"query": row["query"], "kind": row["kind"]}
        for mode in MODES:
            hits, _f, _t = index.search_products(row["query"], Filters(), k, mode=mode)
            ranked = [h.metadata["product_id"] for h in hits]
            n, r = ndcg_at(ranked, relevant, k), recall_at(ranked, relevant, k)
            sums[mode]["ndcg"].append(n)
            sums[mode]["recall"].append(r)
            bucket = kinds.setdefault(mode, {}).setdefault(row["kind"], {"ndcg": [], "recall": []})
            bucket["ndcg"].append(n)
            bucket["recall"].append(r)
            entry[mode] = round(n, 3)
        per_query.append(entry)
    if not used:
        raise UserError(f"no query in {path} has a relevant product in the index (is the sample catalog indexed?)")

    def mean(xs: list[float]) -> float:
        return round(sum(xs) / len(xs), 4) if xs else 0.0

    results = {
        mode: ModeScores(
            ndcg_at_10=mean(sums[mode]["ndcg"]), recall_at_10=mean(sums[mode]["recall"]),
            by_kind={kind: {"ndcg": mean(v["ndcg"]), "recall": mean(v["recall"]), "queries": len(v["ndcg"])}
                     for kind, v in sorted(kinds[mode].items())},
        )
        for mode in MODES
    }
    return EvaluationReport(queries=used, labels=labels, unresolved_titles=sorted(unresolved), results=results,
                            per_query=per_query if details else [])
