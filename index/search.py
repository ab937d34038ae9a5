"""Reading the index: hybrid product and review search (vector + BM25 fused by reciprocal rank), filters, insights.

Build and query are separate: this module never writes to Chroma.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np

from index.client import PRODUCTS, REVIEWS, get_collection, open_chroma
from index.text import has_cjk, normalize, tokenize

Mode = Literal["hybrid", "vector", "bm25"]
MAX_QUERY_CHARS = 1000
RRF_K = 60
CANDIDATES = 50
PAGE = 5000


class SearchInputError(ValueError):
    """The query or a filter is unusable; the message says which and why."""


class IndexMissingError(RuntimeError):
    """The index has not been built yet."""


@dataclass
class Filters:
    min_price: float | None = None
    max_price: float | None = None
    category: str | None = None  # resolved, lower-case category key
    min_rating: float | None = None
    max_rating: float | None = None
    in_stock: bool | None = None
    product_ids: list[str] | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in vars(self).values())


@dataclass
class Hit:
    id: str
    document: str
    metadata: dict[str, Any]
    score: float
    vector_rank: int | None = None
    bm25_rank: int | None = None


# ---------------------------------------------------------------- constraints written in the query

_NUM = r"\$?\s*(\d[\d,]*(?:\.\d+)?)\s*(?:k\b)?\s*(?:dollars?|usd|bucks)?"
_PRICE_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(rf"\bbetween\s+{_NUM}\s+(?:and|to)\s+{_NUM}", re.I), "range"),
    (re.compile(r"(?<![\w.])\$\s*(\d[\d,]*(?:\.\d+)?)\s*(?:-|to)\s*\$\s*(\d[\d,]*(?:\.\d+)?)", re.I), "range"),
    (re.compile(rf"\b(?:under|below|less than|cheaper than|up to|at most|max(?:imum)?|no more than|within|<)\s*{_NUM}",
                re.I), "max"),
    (re.compile(rf"\b(?:over|above|more than|at least|min(?:imum)?|starting at|>)\s*{_NUM}(?!\s*(?:stars?|\+))",
                re.I), "min"),
]
_RATING_PATTERNS: list[re.Pattern] = [
    re.compile(r"\b(?:at least|minimum|min|over|above|rated)\s*(\d(?:\.\d)?)\s*(?:\+\s*)?(?:stars?|star rating)\b",
               re.I),
    re.compile(r"\b(\d(?:\.\d)?)\s*(?:\+|or more|or higher|and up|or above)\s*stars?\b", re.I),
    re.compile(r"\b(\d(?:\.\d)?)\s*stars?\s*(?:\+|or more|or higher|and up|or above|minimum)", re.I),
    re.compile(r"\brated\s*(\d(?:\.\d)?)\s*(?:\+|or more|or higher|and up|or above)", re.I),
]
_IN_STOCK = re.compile(r"\b(in stock|available now|in-stock)\b", re.I)

# Chinese requests against an English catalog: constraints in Chinese, and product words mapped to the catalog's
# English (the embedding model and BM25 both see English documents; "电视" alone finds cameras and guitars)
# prices are US dollars: 美元/美金/刀 or a bare number; 元/块 (yuan) is not read as a dollar bound
_ZH_NUM = r"\$?\s*(\d[\d,]*(?:\.\d+)?)\s*(?:美元|美金|刀)?(?!\s*(?:元|块|\d))"
_ZH_PRICE_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(rf"{_ZH_NUM}\s*(?:到|至|-|~)\s*{_ZH_NUM}\s*(?:之间|以内)?"), "range"),
    (re.compile(rf"(?:低于|少于|不超过|不到|小于|最多|便宜于){_ZH_NUM}"), "max"),
    (re.compile(rf"{_ZH_NUM}\s*(?:以下|以内|之内)"), "max"),
    (re.compile(rf"(?:高于|超过|大于|不低于|至少){_ZH_NUM}(?!\s*(?:星|分))"), "min"),
    (re.compile(rf"{_ZH_NUM}\s*以上"), "min"),
]
_ZH_RATING = [re.compile(r"(\d(?:\.\d)?)\s*(?:颗星|星|分)\s*(?:及以上|或以上|以上)"),
              re.compile(r"(?:至少|不低于|最低)\s*(\d(?:\.\d)?)\s*(?:颗星|星|分)")]
_ZH_IN_STOCK = re.compile(r"有货|现货|有库存")
ZH_TERMS = {  # longest first when matched; the English is what the catalog's titles and categories say
    "游戏笔记本": "gaming laptop", "笔记本电脑": "laptop", "笔记本": "laptop", "台式电脑": "desktop PC",
    "台式机": "desktop PC", "电脑": "computer", "电视机": "TV", "电视": "TV", "降噪耳机": "noise cancelling headphones",
    "耳机": "headphones", "耳塞": "earbuds", "显示器": "monitor", "屏幕": "monitor", "回音壁": "soundbar",
    "条形音箱": "soundbar", "家庭影院": "home theater", "音箱": "speaker", "音响": "speaker", "平板电脑": "tablet",
    "平板": "tablet", "智能手表": "smart watch", "手表": "watch", "路由器": "router", "安防摄像头": "security camera",
    "监控摄像头": "security camera", "摄像头": "camera", "相机": "camera", "游戏机": "video game console",
    "手柄": "controller", "投影仪": "projector", "手机": "phone", "电池": "batteries", "固态硬盘": "SSD",
    "硬盘": "hard drive", "吉他": "guitar", "钢琴": "piano", "键盘": "keyboard", "鼠标": "mouse", "打印机": "printer",
    "智能家居": "smart home", "无线": "wireless", "蓝牙": "bluetooth", "游戏": "gaming", "曲面": "curved", "寸": "inch",
    "三星": "Samsung", "索尼": "Sony", "苹果": "Apple", "华硕": "ASUS", "戴尔": "Dell", "惠普": "HP", "联想": "Lenovo",
    "微软": "Microsoft", "任天堂": "Nintendo", "佳能": "Canon", "尼康": "Nikon", "罗技": "Logitech", "雅马哈": "Yamaha",
    "宏碁": "Acer", "微星": "MSI", "外星人": "Alienware", "博士": "Bose", "谷歌": "Google", "亚马逊": "Amazon",
    "松下": "Panasonic", "飞利浦": "Philips", "海信": "Hisense",
}
_ZH_TERM_RE = re.compile("|".join(sorted(map(re.escape, ZH_TERMS), key=len, reverse=True)))
# A review query that asks for the bad or the good reviews, in its own words: the star bounds it means (1-2, 4-5).
BAD_REVIEW_STARS, GOOD_REVIEW_STARS = 2.0, 4.0
_BAD_REVIEWS = re.compile(r"\b(?:bad|negative|poor|critical|one-star|1-star|low-rated|worst)\s+(?:reviews?|ratings?)\b"
                          r"|差评|负面评价|负评|低分评价|一星", re.I)
_GOOD_REVIEWS = re.compile(r"\b(?:good|positive|great|best|five-star|5-star|top-rated)\s+(?:reviews?|ratings?)\b"
                           r"|好评|正面评价|五星", re.I)


def review_stars(text: str) -> dict[str, float] | None:
    """The star bounds a request for reviews states in words: the bad ones ("差评", "bad reviews": at most 2 stars)
    or the good ones ("好评", "positive reviews": at least 4); None when it states neither.
    """
    if _BAD_REVIEWS.search(text):
        return {"max_rating": BAD_REVIEW_STARS}
    if _GOOD_REVIEWS.search(text):
        return {"min_rating": GOOD_REVIEW_STARS}
    return None


def _zh_terms(text: str) -> str:
    if not _ZH_TERM_RE.search(text):
        return text
    # product words in English where they stand, the rest of the Chinese (fillers such as 有没有, 推荐) dropped:
    # what is left is what the catalog can match ("三星 65 寸电视" -> "Samsung 65 inch TV")
    text = _ZH_TERM_RE.sub(lambda m: f" {ZH_TERMS[m.group()]} ", text)
    return " ".join(w for w in re.split(r"[\s\u3000-\u303f\uff00-\uffef\u3400-\u9fff?!,.]+", text) if w)


def _money(text: str, whole: str) -> float:
    value = float(text.replace(",", ""))
    if re.search(r"\d\s*k\b", whole, re.I):
        value *= 1000
    return value


def _take_constraints(text: str, found: dict[str, Any], ratings: list[re.Pattern],
                      prices: list[tuple[re.Pattern, str]], in_stock: re.Pattern) -> str:
    """Move the rating, price and stock constraints that the patterns find from `text` into `found`."""
    for pattern in ratings:
        m = pattern.search(text)
        if m and 0 < float(m.group(1)) <= 5:
            found["min_rating"] = float(m.group(1))
            text = text[: m.start()] + " " + text[m.end():]
            break
    for pattern, kind in prices:
        m = pattern.search(text)
        if not m:
            continue
        if kind == "range":
            low, high = sorted((_money(m.group(1), m.group(0)), _money(m.group(2), m.group(0))))
            found["min_price"], found["max_price"] = low, high
        elif kind == "max":
            found["max_price"] = _money(m.group(1), m.group(0))
        else:
            found["min_price"] = _money(m.group(1), m.group(0))
        text = text[: m.start()] + " " + text[m.end():]
    if in_stock.search(text):
        found["in_stock"] = True
        text = in_stock.sub(" ", text)
    return text


def parse_query(query: str) -> tuple[str, dict[str, Any]]:
    """Split price, rating and stock constraints out of free text: ("tv under $500" -> "tv", {"max_price": 500}).
    In a Chinese request, Chinese constraints too, and product words become the catalog's English.
    """
    found: dict[str, Any] = {}
    text = _take_constraints(query, found, _RATING_PATTERNS, _PRICE_PATTERNS, _IN_STOCK)
    if has_cjk(text):
        text = _zh_terms(_take_constraints(text, found, _ZH_RATING, _ZH_PRICE_PATTERNS, _ZH_IN_STOCK))
    text = re.sub(r"\s+", " ", text).strip(" ,.;")
    # a phrase written again and again ("laptops, laptops, laptops, ...": a small model looping) is one phrase
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1 and len(set(parts)) < len(parts):
        if any(p != parts[-1] and p.startswith(parts[-1]) for p in parts[:-1]):
            parts = parts[:-1]  # the loop was cut mid-phrase (the grammar caps a query's length): "…, laptops, lap"
        text = ", ".join(dict.fromkeys(p for p in parts if p))
    return text, found


# ---------------------------------------------------------------- the index


def _rrf(*rankings: list[str], k: int = RRF_K) -> dict[str, float]:
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, rid in enumerate(ranking):
            scores[rid] += 1.0 / (k + rank + 1)
    return scores


def where_clause(f: Filters) -> dict[str, Any] | None:
    """The same filters as a Chroma `where`, so vector search filters inside Chroma. Bounds are floats, as the
    index stores every price and rating: Chroma compares a bound only with stored values of its own type.
    """
    conds: list[dict[str, Any]] = []
    if f.product_ids is not None:
        conds.append({"product_id": {"$in": list(f.product_ids)}})
    if f.category is not None:
        conds.append({"category_key": {"$eq": f.category}})
    if f.in_stock is not None:
        conds.append({"in_stock": {"$eq": f.in_stock}})
    if f.min_price is not None:
        conds.append({"price": {"$gte": float(f.min_price)}})
    if f.max_price is not None:
        conds.append({"price": {"$lte": float(f.max_price)}})
        conds.append({"price": {"$gte": 0.0}})
    if f.min_rating is not None:
        conds.append({"rating": {"$gte": float(f.min_rating)}})
    if f.max_rating is not None:
        conds.append({"rating": {"$lte": float(f.max_rating)}})
        conds.append({"rating": {"$gte": 0.0}})
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else {"$and": conds}


@dataclass
class _Keyword:
    ids: list[str]
    documents: list[str]
    metadatas: list[dict[str, Any]]
    bm25: Any
    position: dict[str, int] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # filter fields as arrays (NaN where missing)

    def __post_init__(self):
        def num(key: str) -> np.ndarray:
            return np.array([_float(m.get(key)) for m in self.metadatas], dtype=np.float64)

        self.columns = {
            "price": num("price"), "rating": num("rating"),
            # 1.0 / 0.0, NaN where the record has no stock (reviews): a missing field fails the filter, as in Chroma
            "in_stock": np.array([np.nan if m.get("in_stock") is None else float(bool(m["in_stock"]))
                                  for m in self.metadatas], dtype=np.float64),
            "category_key": np.array([m.get("category_key") or "" for m in self.metadatas], dtype=object),
            "product_id": np.array([m.get("product_id") or "" for m in self.metadatas], dtype=object),
        }

    def mask(self, f: Filters) -> np.ndarray:
        """Which records pass the filters, over whole columns (NaN fails every comparison), as `where_clause` does."""
        c = self.columns
        ok = np.ones(len(self.ids), dtype=bool)
        with np.errstate(invalid="ignore"):
            if f.product_ids is not None:
                ok &= np.isin(c["product_id"], list(f.product_ids))
            if f.category is not None:
                ok &= c["category_key"] == f.category
            if f.in_stock is not None:
                ok &= c["in_stock"] == float(f.in_stock)
            if f.min_price is not None:
                ok &= c["price"] >= f.min_price
            if f.max_price is not None:
                ok &= (c["price"] >= 0) & (c["price"] <= f.max_price)
            if f.min_rating is not None:
                ok &= c["rating"] >= f.min_rating
            if f.max_rating is not None:
                ok &= (c["rating"] >= 0) & (c["rating"] <= f.max_rating)
        return ok

    def passing_ids(self, f: Filters) -> list[str]:
        return [self.ids[i] for i in np.flatnonzero(self.mask(f))]


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


class SearchIndex:
    """Read-only handle on the products and reviews collections. Cheap to keep for a session (ctx.cache)."""

    def __init__(self, settings, client=None, ef=None):
        from index.embeddings import embedding_function  # chromadb: seconds to import, so not at module level

        self.settings = settings
        self.client = client or open_chroma(settings)
        self.ef = ef or embedding_function(settings)
        self._collections: dict[str, Any] = {}
        self._keyword: dict[str, _Keyword] = {}
        self._lock = threading.Lock()  # one BM25 build per collection when sessions share this index
        self._categories: dict[str, str] | None = None

    # -- plumbing
    def collection(self, name: str):
        if name not in self._collections:
            col = get_collection(self.client, name, self.ef)
            if col is None:
                raise IndexMissingError(
                    f"the search index has no '{name}' collection yet: run `shopdesk index build`"
                )
            self._collections[name] = col
        return self._collections[name]

    def keyword(self, name: str) -> _Keyword:
        """BM25 over the collection's documents, built on first use from what Chroma holds."""
        if name in self._keyword:
            return self._keyword[name]
        with self._lock:
            if name in self._keyword:
                return self._keyword[name]
            import bm25s

            col = self.collection(name)
            ids: list[str] = []
            docs: list[str] = []
            metas: list[dict[str, Any]] = []
            offset = 0
            while True:
                page = col.get(include=["documents", "metadatas"], limit=PAGE, offset=offset)
                ids += page["ids"]
                docs += page["documents"]
                metas += page["metadatas"]
                if len(page["ids"]) < PAGE:
                    break
                offset += PAGE
            retriever = bm25s.BM25()
            if ids:
                corpus = [tokenize(d) or ["_"] for d in docs]
                retriever.index(corpus, show_progress=False)
            self._keyword[name] = _Keyword(ids, docs, metas, retriever, {rid: i for i, rid in enumerate(ids)})
        return self._keyword[name]

    def categories(self) -> dict[str, str]:
        """category key (lower case) -> display name, for every category in the product index."""
        if self._categories is None:
            kw = self.keyword(PRODUCTS)
            self._categories = {m["category_key"]: m["category"] for m in kw.metadatas if m.get("category_key")}
        return self._categories

    def resolve_category(self, category: str) -> str:
        """A category name as the user wrote it -> the index's category key, or SearchInputError listing choices."""
        known = self.categories()
        want = normalize(category).strip()
        if not want:
            raise SearchInputError("category is empty")
        candidates = [want, want.rstrip("s"), want + "s", want + "es"]
        for c in candidates:
            if c in known:
                return c
        for key in known:
            if want in key or key.rstrip("s") in want:
                return key
        listing = ", ".join(sorted(known.values())[:40])
        raise SearchInputError(f"unknown category {category!r}; known categories: {listing}")

    @staticmethod
    def check_query(query: str) -> str:
        if query is None or not query.strip():
            raise SearchInputError("query is empty: say what to search for")
        if len(query) > MAX_QUERY_CHARS:
            raise SearchInputError(f"query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
        return query.strip()

    # -- ranking
    def _scope(self, name: str, f: Filters, total: int) -> tuple[dict[str, Any], int]:
        """How a vector query on `name` is restricted to the records passing `f`, and how many those are.

        Chroma evaluates a `where` over every record's metadata in SQLite (at 20,000 products 156 ms against 8 ms
        unfiltered); the ids that pass, taken from the keyword side's numpy columns when those are loaded anyway,
        give the same neighbours in 12 ms (bench_search.py --filter-shapes).
        """
        if f.is_empty():
            return {}, total
        if name in self._keyword:
            allowed = self._keyword[name].passing_ids(f)
            return {"ids": allowed}, len(allowed)
        return {"where": where_clause(f)}, total

    def _vector(self, name: str, query: str, f: Filters, n: int) -> list[tuple[str, str, dict, float]]:
        col = self.collection(name)
        total = col.count()
        if total == 0:
            return []
        scope, total = self._scope(name, f, total)
        if not total:
            return []
        embedding = self.ef.embed_query([query])
        res = col.query(query_embeddings=embedding, n_results=min(n, total),
                        include=["documents", "metadatas", "distances"], **scope)
        return list(zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True))

    def _bm25(self, name: str, query: str, f: Filters, n: int) -> list[tuple[str, float]]:
        kw = self.keyword(name)
        tokens = tokenize(query)[:200]
        if not kw.ids or not tokens:
            return []
        scores = np.asarray(kw.bm25.get_scores(tokens), dtype=np.float32)
        keep = scores > 0
        if not f.is_empty():
            keep &= kw.mask(f)
        candidates = np.flatnonzero(keep)
        if len(candidates) > n:  # top n without sorting the whole corpus
            candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
        top = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(kw.ids[i], float(scores[i])) for i in top]

    def _title_ranking(self, name: str, query: str, vec: list, kw: list) -> list[str]:
        """Candidates ranked by how many of the query's words their title holds (names and model numbers)."""
        wanted = set(tokenize(query))
        if name != PRODUCTS or not wanted:
            return []
        titles = {rid: meta.get("title", "") for rid, _d, meta, _ in vec}
        keyword = self.keyword(name) if kw else None
        for rid, _score in kw:
            if rid not in titles:
                titles[rid] = keyword.metadatas[keyword.position[rid]].get("title", "")
        coverage = {rid: len(wanted & set(tokenize(t))) / len(wanted) for rid, t in titles.items()}
        order = {rid: r for r, (rid, _s) in enumerate(kw)}
        ranked = sorted((rid for rid, c in coverage.items() if c >= 0.5),
                        key=lambda rid: (-coverage[rid], order.get(rid, len(order))))
        return ranked

    def search(self, name: str, query: str, f: Filters, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        n = max(CANDIDATES, k)
        kw = self._bm25(name, query, f, n) if mode in ("hybrid", "bm25") else []  # first: _vector uses its columns
        vec = self._vector(name, query, f, n) if mode in ("hybrid", "vector") else []
        vec_rank = {rid: r for r, (rid, *_rest) in enumerate(vec)}
        kw_rank = {rid: r for r, (rid, _s) in enumerate(kw)}
        if mode == "vector":
            scores = {rid: 1.0 - dist for rid, _d, _m, dist in vec}
        elif mode == "bm25":
            scores = dict(kw)
        else:
            scores = _rrf([rid for rid, *_ in vec], [rid for rid, _ in kw], self._title_ranking(name, query, vec, kw))
        known = {rid: (doc, meta) for rid, doc, meta, _ in vec}
        keyword = self.keyword(name) if kw else None
        hits = []
        for rid in sorted(scores, key=lambda r: -scores[r])[:k]:
            if rid in known:
                doc, meta = known[rid]
            else:
                i = keyword.position[rid]
                doc, meta = keyword.documents[i], keyword.metadatas[i]
            hits.append(Hit(rid, doc, meta, round(float(scores[rid]), 5), vec_rank.get(rid), kw_rank.get(rid)))
        return hits

    def search_products(self, query: str, f: Filters | None = None, k: int = 5, mode: Mode = "hybrid",
                        parse: bool = True) -> tuple[list[Hit], Filters, str]:
        """Products for a free-text query; constraints in the text become filters. Returns hits, filters, query."""
        query = self.check_query(query)
        f = f or Filters()
        text = query
        if parse:
            text, parsed = parse_query(query)
            for key, value in parsed.items():
                if getattr(f, key) is None:
                    setattr(f, key, value)
            text = text or query
        return self.search(PRODUCTS, text, f, k, mode), f, text

    def search_reviews(self, query: str, f: Filters | None = None, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        query, f = self.check_query(query), f or Filters()
        # "电视有哪些差评？" asks for the bad ones (the walk of session 18 showed five-star TV reviews for it)
        if f.min_rating is None and f.max_rating is None and (stars := review_stars(query)) is not None:
            f = Filters(**{**vars(f), **stars})
        if has_cjk(query):
            query, f = self.zh_review_query(query, f)
        return self.search(REVIEWS, query, f, k, mode)

    def zh_review_query(self, query: str, f: Filters) -> tuple[str, Filters]:
        """A Chinese review query as the index can match it: the catalog's English joins the Chinese words (English
        reviews match too), and a product word that names one category ("电视" -> TVs) keeps the search to that
        category's reviews when no product or category is given ("电视有哪些差评？" found battery reviews before).
        """
        english = _zh_terms(query)
        if english == query:
            return query, f
        if f.category is None and f.product_ids is None and (key := self.category_for(query)):
            f = Filters(**{**vars(f), "category": key})
        return f"{query} {english}", f

    def category_for(self, word: str) -> str | None:
        """The one category key a product word names ("TV" -> "tvs", "headphones" -> "headphones & earbuds"), its
        name starting with the word; None for a word that names no category or several (a brand, "wireless"). Chinese
        text names the categories of its product words' English (ZH_TERMS: "电视" and "电视有哪些差评" -> "tvs"), when
        those are one.
        """
        if has_cjk(word):
            found = {key for m in _ZH_TERM_RE.finditer(word) if (key := self.category_for(ZH_TERMS[m.group()]))}
            return found.pop() if len(found) == 1 else None
        want = normalize(word).strip()
        keys = [key for key in self.categories() if key.startswith(want)]
        return keys[0] if len(keys) == 1 else None

    def product_ids_for(self, product: str, limit: int = 20, categories: bool = False) -> list[str] | str:
        """Product ids for a product reference (id, or words of its title); [] when nothing matches. With
        `categories`, a reference that no title holds but that names one category ("tvs", "headphones", "电视": what a
        model writes as the product of "电视有哪些差评？") is that category's key (a str), before the closest title by
        words.
        """
        kw = self.keyword(PRODUCTS)
        ref = product.strip()
        if ref in kw.position:
            return [ref]
        low = normalize(ref)
        exact = [m["product_id"] for m in kw.metadatas if normalize(m["title"]) == low]
        if exact:
            return exact
        contains = [m["product_id"] for m in kw.metadatas if low in normalize(m["title"])]
        if contains:
            return contains[:limit]
        if categories and (key := self.category_for(ref)):
            return key
        hits = self._bm25(PRODUCTS, ref, Filters(), 1)
        return [hits[0][0]] if hits else []

    def product_metadata(self, f: Filters | None = None) -> list[dict[str, Any]]:
        """The metadata of every product passing the filters, from the keyword side's snapshot of the collection."""
        kw = self.keyword(PRODUCTS)
        if f is None:
            return list(kw.metadatas)
        return [kw.metadatas[i] for i in np.flatnonzero(kw.mask(f))]

    # -- insights
    def review_metadata(self, f: Filters) -> list[tuple[str, dict[str, Any]]]:
        """(document, metadata) of every review matching the filters: from the keyword side's columns when those are
        loaded (the same snapshot of the collection, no metadata scan in SQLite), else straight from Chroma.
        """
        if REVIEWS in self._keyword:
            kw = self._keyword[REVIEWS]
            return [(kw.documents[i], kw.metadatas[i]) for i in np.flatnonzero(kw.mask(f))]
        col = self.collection(REVIEWS)
        where = where_clause(f)
        out: list[tuple[str, dict[str, Any]]] = []
        offset = 0
        while True:
            page = col.get(where=where, include=["documents", "metadatas"], limit=PAGE, offset=offset)
            out += list(zip(page["documents"], page["metadatas"], strict=True))
            if len(page["ids"]) < PAGE:
                return out
            offset += PAGE

    def embeddings_of(self, ids: list[str]) -> tuple[list[str], np.ndarray]:
        """(ids found, their vectors) for product ids; ids missing from the index are left out."""
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        res = self.collection(PRODUCTS).get(ids=ids, include=["embeddings"])
        return list(res["ids"]), np.asarray(res["embeddings"], dtype=np.float32)

    def nearest_products(self, vector: np.ndarray, exclude: set[str], k: int, f: Filters | None = None) -> list[Hit]:
        col = self.collection(PRODUCTS)
        total = col.count()
        if total == 0:
            return []
        scope, total = self._scope(PRODUCTS, f or Filters(), total)
        if not total:
            return []
        res = col.query(query_embeddings=[vector.tolist()], n_results=min(total, k + len(exclude) + 5),
                        include=["documents", "metadatas", "distances"], **scope)
        hits = []
        for rid, doc, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                        res["distances"][0], strict=True):
            if rid in exclude:
                continue
            hits.append(Hit(rid, doc, meta, round(1.0 - float(dist), 5)))
            if len(hits) >= k:
                break
        return hits


def insights(rows: list[tuple[str, dict[str, Any]]], top: int = 5) -> dict[str, Any]:
    """Counts from build-time metadata: ratings, sentiment share, aspects with example quotes, monthly trend."""
    ratings = Counter(int(m["rating"]) for _, m in rows)
    sentiments = Counter(m.get("sentiment", "neutral") for _, m in rows)
    pos: Counter = Counter()
    neg: Counter = Counter()
    quotes: dict[tuple[str, int], list[tuple[str, str]]] = defaultdict(list)
    months: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _doc, meta in rows:
        for mention in json.loads(meta.get("aspects") or "[]"):
            key = (mention["aspect"], mention["polarity"])
            if mention["polarity"] > 0:
                pos[mention["aspect"]] += 1
            elif mention["polarity"] < 0:
                neg[mention["aspect"]] += 1
            else:
                continue
            if len(quotes[key]) < 2:
                quotes[key].append((meta["review_id"], mention["quote"]))
        if meta.get("month"):
            months[meta["month"]].append(meta)
    n = len(rows)
    trend = [
        {
            "month": month,
            "reviews": len(items),
            "average_rating": round(sum(int(m["rating"]) for m in items) / len(items), 2),
            "positive_share": round(sum(m.get("sentiment") == "positive" for m in items) / len(items), 3),
        }
        for month, items in sorted(months.items())
    ]
    dates = [m["date"] for _, m in rows if m.get("date")]
    return {
        "reviews": n,
        "average_rating": round(sum(k * v for k, v in ratings.items()) / n, 2) if n else None,
        "rating_distribution": {str(star): ratings.get(star, 0) for star in range(1, 6)},
        "sentiment_share": {s: round(sentiments.get(s, 0) / n, 3) if n else 0.0
                            for s in ("positive", "neutral", "negative")},
        "top_positive": [{"aspect": a, "mentions": c, "quotes": quotes[(a, 1)]} for a, c in pos.most_common(top)],
        "top_negative": [{"aspect": a, "mentions": c, "quotes": quotes[(a, -1)]} for a, c in neg.most_common(top)],
        "trend": trend,
        "first_review": min(dates) if dates else None,
        "last_review": max(dates) if dates else None,
        "as_of": date.today().isoformat(),
    }
