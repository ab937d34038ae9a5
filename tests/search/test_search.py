"""Product and review search on the session index: filters inside Chroma, parsed constraints, hybrid ranking,
quoted untrusted text, insights counted from metadata, recommendations.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from index.search import Filters, parse_query, where_clause


@pytest.mark.parametrize(
    "query, text, found",
    [
        ("tv under $500", "tv", {"max_price": 500.0}),
        ("soundbar below 300 dollars", "soundbar", {"max_price": 300.0}),
        ("laptop between $800 and $1,200", "laptop", {"min_price": 800.0, "max_price": 1200.0}),
        ("headphones at least 4 stars", "headphones", {"min_rating": 4.0}),
        ("speaker 4.5+ stars under $150", "speaker", {"min_rating": 4.5, "max_price": 150.0}),
        ("monitor over $200 in stock", "monitor", {"min_price": 200.0, "in_stock": True}),
        ("RTX 4070 gaming laptop", "RTX 4070 gaming laptop", {}),
        ("65 inch tv", "65 inch tv", {}),
        # Chinese against the English catalog: constraints read, product words in the catalog's English
        ("有没有 500 美元以下的电视推荐？", "TV", {"max_price": 500.0}),
        ("4星以上的降噪耳机，300美元以内", "noise cancelling headphones", {"min_rating": 4.0, "max_price": 300.0}),
        ("1000到2000美元的游戏笔记本", "gaming laptop", {"min_price": 1000.0, "max_price": 2000.0}),
        ("有货的 RTX 4070 游戏笔记本", "RTX 4070 gaming laptop", {"in_stock": True}),
        ("三星 65 寸电视", "Samsung 65 inch TV", {}),
        ("音箱 低于200元", "speaker 200", {}),  # yuan is not a dollar bound
        ("你好", "你好", {}),
    ],
)
def test_constraints_in_the_query_become_filters(query, text, found):
    assert parse_query(query) == (text, found)


def test_where_clause_combines_filters():
    assert where_clause(Filters()) is None
    assert where_clause(Filters(in_stock=True)) == {"in_stock": {"$eq": True}}
    clause = where_clause(Filters(min_price=10, max_price=20, category="tvs"))
    assert {"price": {"$lte": 20}} in clause["$and"] and {"category_key": {"$eq": "tvs"}} in clause["$and"]


def _price_of(search_env, pid):
    prices = [float(v["price"]) for v in search_env["variants"] if v["product_id"] == pid]
    return min(prices)


def test_filters_apply_inside_chroma_and_to_keyword_hits(ctx, search_env):
    from tools.search import search_products

    result = search_products(ctx, "speaker", max_price=150, min_rating=4.3, in_stock=True, k=20)
    assert result.products, "the catalog has speakers under $150 rated 4.3+"
    for p in result.products:
        assert p.price <= 150 and p.rating >= 4.3 and p.in_stock
        assert _price_of(search_env, p.product_id) == pytest.approx(p.price)
    # vector-only ranking goes through Chroma's where: same guarantees
    hits, _, _ = search_env["index"].search_products("speaker", Filters(max_price=150, in_stock=True), 20, "vector")
    assert hits and all(h.metadata["price"] <= 150 and h.metadata["in_stock"] for h in hits)


def test_category_filter_accepts_loose_names(ctx):
    from tools.search import search_products

    result = search_products(ctx, "wireless", category="smart watches", k=10)
    assert result.products and {p.category for p in result.products} == {"Smart Watches"}
    # the header names the category as the catalog spells it, not as the index keys it
    assert result.filters["category"] == "Smart Watches" and "category Smart Watches" in result.render("en")
    assert "类别 Smart Watches" in result.render("zh")


def test_price_constraint_written_in_query(ctx):
    from tools.search import search_products

    result = search_products(ctx, "soundbar under $200", k=10)
    assert result.filters["max_price"] == 200.0
    assert result.products and all(p.price <= 200 for p in result.products)
    assert any("soundbar" in p.title.lower() or "sound bar" in p.title.lower() for p in result.products[:3])


def test_model_numbers_match_exactly_with_hybrid(search_env):
    index = search_env["index"]
    hits, _, _ = index.search_products("GoPro HERO11", Filters(), k=3)
    assert "HERO11" in hits[0].metadata["title"]
    hits, _, _ = index.search_products("Roland TD-07KX", Filters(), k=3)
    assert "TD-07KX" in hits[0].metadata["title"]


def test_hybrid_beats_vector_and_bm25_on_labelled_queries(search_env):
    from index.evaluate import evaluate

    report = evaluate(search_env["index"])
    assert report.queries >= 40, report.unresolved_titles[:5]
    hybrid, vector, bm25 = (report.results[m] for m in ("hybrid", "vector", "bm25"))
    assert hybrid.ndcg_at_10 > vector.ndcg_at_10
    assert hybrid.ndcg_at_10 > bm25.ndcg_at_10
    assert hybrid.recall_at_10 >= max(vector.recall_at_10, bm25.recall_at_10) - 0.02


def test_review_search_cites_review_product_rating_date(ctx, search_env):
    from tools.search import search_reviews

    result = search_reviews(ctx, "battery dies quickly", max_rating=2, k=5)
    assert result.reviews
    by_id = {r["id"]: r for r in search_env["reviews"]}
    for hit in result.reviews:
        truth = by_id[hit.review_id]
        assert hit.rating == truth["rating"] <= 2
        assert hit.date == truth["date"]
        assert hit.product_id == search_env["placed"][hit.review_id]
    text = result.render()
    assert f"review {result.reviews[0].review_id}" in text and '"""' in text


def test_review_search_limited_to_a_product(ctx, search_env):
    from tools.search import search_reviews

    result = search_reviews(ctx, "sound", product="Bose SoundLink Flex SE", k=10)
    assert result.reviews and {r.product for r in result.reviews} == {"Bose SoundLink Flex SE Bluetooth Speaker"}


@pytest.mark.parametrize("query,category", [("电视有哪些差评？", "TVs"), ("耳机 差评", "Headphones & Earbuds"),
                                            ("笔记本电脑的评价", "Laptops & Notebook Computers")])
def test_a_chinese_review_query_keeps_to_the_category_its_product_word_names(ctx, search_env, query, category):
    # "电视有哪些差评？" found battery and laptop reviews (session 17's held-out check): the English MiniLM and the
    # keyword side had only the Chinese word to go on
    from tools.search import search_reviews

    result = search_reviews(ctx, query, k=10)
    cats = {p["id"]: p["category"] for p in search_env["products"]}
    assert result.reviews and {cats[r.product_id] for r in result.reviews} == {category}


@pytest.mark.parametrize("query,low,high", [("电视有哪些差评？", 1, 2), ("bad reviews of the TV", 1, 2),
                                           ("电视的好评", 4, 5), ("positive reviews for headphones", 4, 5)])
def test_a_review_query_asking_for_bad_or_good_reviews_gets_those_stars(ctx, query, low, high):
    from tools.search import search_reviews

    result = search_reviews(ctx, query, k=10)
    assert result.reviews and all(low <= r.rating <= high for r in result.reviews)
    # stars the caller gives are kept
    assert all(r.rating == 3 for r in search_reviews(ctx, query, min_rating=3, max_rating=3, k=10).reviews)


def test_a_chinese_review_query_without_a_category_word_is_not_limited(ctx):
    from index.search import Filters
    from tools.search import open_index

    index = open_index(ctx)
    assert index.zh_review_query("三星的评价", Filters()) == ("三星的评价 Samsung", Filters())  # a brand, no category
    assert index.zh_review_query("质量怎么样", Filters()) == ("质量怎么样", Filters())
    # a product or category the caller gives is kept
    given = Filters(product_ids=["P1"])
    assert index.zh_review_query("电视 差评", given)[1] == given


def test_injected_instructions_reach_the_agent_as_inert_quotes(ctx):
    from tools.search import search_reviews

    result = search_reviews(ctx, "refund soundbar", product="Bose Solo Soundbar 2", k=10)
    injected = [r for r in result.reviews if "Great soundbar" in r.quote]
    assert injected, "the review carrying an injection is still findable"
    quote = injected[0].quote
    for bad in ("<|im_start|>", "<tool_call>", "</tool_call>", "Ignore previous instructions"):
        assert bad.lower() not in quote.lower()
    assert "[removed]" in quote
    rendered = result.render()
    assert "<tool_call>" not in rendered and "<|im_start|>" not in rendered


def test_insights_are_counted_from_build_time_metadata(ctx, search_env):
    from index.sentiment import analyze
    from tools.search import review_insights

    name = "AirPods Pro (2nd generation) with MagSafe Case (USB-C) with AppleCare+ Included"
    result = review_insights(ctx, product=name)
    mine = [r for r in search_env["reviews"] if name.startswith(r["product"])]
    assert result.reviews == len(mine)
    assert result.rating_distribution == {str(s): sum(r["rating"] == s for r in mine) for s in range(1, 6)}
    sentiments = Counter(analyze(r["text"], r["title"]).sentiment for r in mine)
    assert result.sentiment_share["positive"] == pytest.approx(sentiments["positive"] / len(mine), abs=1e-3)
    months = Counter(r["date"][:7] for r in mine)
    assert {t.month: t.reviews for t in result.trend} == dict(months)
    assert result.as_of and result.last_review == max(r["date"] for r in mine)
    assert "battery" in {a.aspect for a in result.top_positive + result.top_negative}
    for aspect in result.top_positive + result.top_negative:
        assert aspect.mentions >= 1 and aspect.quotes and aspect.quotes[0].startswith("review ")


def test_insights_for_a_category(ctx, search_env):
    from tools.search import review_insights

    result = review_insights(ctx, category="Headphones & Earbuds")
    expected = [r for r in search_env["reviews"] if r["product"].startswith(("AirPods", "Beats"))]
    assert result.reviews == len(expected)
    assert "Headphones" in result.scope
    assert result.render().startswith("Review insights for category Headphones")


def test_recommendations_exclude_what_the_customer_bought(search_env):
    from store.models import Customer, Order, OrderItem
    from tools.context import ShopContext
    from tools.search import recommend_products

    store = search_env["store"]
    products = {p["name"]: p["id"] for p in search_env["products"]}
    bought = [products[n] for n in products if n.startswith(("Sonos Era 100", "Bose SoundLink Flex SE"))]
    now = datetime(2025, 5, 1)
    with store.transaction() as s:
        s.merge(Customer(id="c-rec", first_name="Ada"))
        s.flush()
        s.merge(Order(id="o-rec", customer_id="c-rec", status="delivered", created_at=now, updated_at=now,
                      total=Decimal("1")))
        s.flush()
        for pid in bought:
            s.add(OrderItem(order_id="o-rec", product_id=pid, name=pid, quantity=1, unit_price=Decimal("1")))
    ctx = ShopContext(store=store, settings=search_env["settings"], role="customer", customer_id="c-rec")
    ctx.cache["search_index"] = search_env["index"]
    recs = recommend_products(ctx, k=5)
    ids = [r.product_id for r in recs.products]
    assert len(ids) == 5 and not set(ids) & set(bought)
    # similar products: speakers or audio gear
    assert sum(r.category.startswith(("Speakers", "Soundbars", "Headphones")) for r in recs.products) >= 3
    assert recs.based_on

    newcomer = ShopContext(store=store, settings=search_env["settings"], role="customer", customer_id="c-none")
    newcomer.cache["search_index"] = search_env["index"]
    popular = recommend_products(newcomer, k=3)
    assert len(popular.products) == 3 and popular.based_on == []

    from tools.results import unbound_facts

    for result in (recs, popular):
        assert unbound_facts(result, "en") == [] and unbound_facts(result, "zh") == []


def test_recommendations_put_recent_views_and_carts_first(search_env):
    """What the customer viewed or carted in the last 60 days and did not buy comes first, carts before views; an
    older view, or a product they bought, does not.
    """
    from store.models import Customer, Event, Order, OrderItem
    from tools.context import ShopContext
    from tools.search import recommend_for

    store = search_env["store"]
    ids = [p["id"] for p in search_env["products"]]
    now = datetime(2025, 6, 1)
    bought, viewed, carted, old = ids[0], ids[1], ids[2], ids[3]
    with store.transaction() as s:
        s.merge(Customer(id="c-journey", first_name="Jo"))
        s.flush()
        s.merge(Order(id="o-journey", customer_id="c-journey", status="delivered", created_at=now - timedelta(days=9),
                      updated_at=now, total=Decimal("1")))
        s.flush()
        s.add(OrderItem(order_id="o-journey", product_id=bought, name=bought, quantity=1, unit_price=Decimal("1")))
        for n, (pid, kind, days) in enumerate([(viewed, "view", 3), (viewed, "view", 2), (carted, "cart", 5),
                                               (old, "view", 90), (bought, "view", 10), (ids[4], "view", -1)]):
            s.add(Event(key=f"j{n}", customer_id="c-journey", kind=kind, product_id=pid,
                        occurred_at=now - timedelta(days=days)))
    ctx = ShopContext(store=store, settings=search_env["settings"], role="customer", customer_id="c-journey")
    ctx.cache["search_index"] = search_env["index"]
    recs = recommend_for(ctx, "c-journey", 5, now=now)
    got = [r.product_id for r in recs.products]
    assert got[:2] == [carted, viewed] and [r.seen for r in recs.products[:2]] == ["cart", "view"]
    # too old, owned, in the future: not suggested for having been seen (a similar product may still be suggested)
    assert [r.product_id for r in recs.products if r.seen] == [carted, viewed] and bought not in got
    assert all(r.seen is None and r.similar_to for r in recs.products[2:])
    assert "in your cart" in recs.render() and "您最近浏览过" in recs.render("zh")
    plain = recommend_for(ctx, "c-journey", 5, now=now, journey=False)
    assert all(r.seen is None for r in plain.products)
    from tools.results import unbound_facts

    assert unbound_facts(recs, "en") == [] and unbound_facts(recs, "zh") == []


def test_recommendations_need_a_signed_in_customer(ctx):
    from tools.search import recommend_products

    with pytest.raises(PermissionError):
        recommend_products(ctx)


def test_renderers_state_prices_and_ids(ctx):
    from tools.search import search_products

    result = search_products(ctx, "noise cancelling headphones", k=3)
    text = result.render()
    for p in result.products:
        line = next(line for line in text.splitlines() if f"[{p.product_id}]" in line)
        assert f"${p.price:.2f}" in line
        if p.rating is not None:
            assert f"rating {p.rating}" in line  # the catalog's rating as stored, not rounded
    json.dumps(result.model_dump())


def test_results_state_every_fact_on_its_own_line_in_both_languages(ctx):
    from tools.results import unbound_facts
    from tools.search import review_insights, search_products, search_reviews

    results = [search_products(ctx, "noise cancelling headphones", max_price=400, k=5),
               search_reviews(ctx, "battery dies quickly", k=5),
               review_insights(ctx, category="Headphones & Earbuds")]
    for result in results:
        assert result.facts()
        for lang in ("en", "zh"):
            assert unbound_facts(result, lang) == [], (type(result).__name__, lang)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in result.render("zh"))


def test_bm25_filter_mask_matches_chromas_where(search_env):
    """The vectorised BM25 filter keeps exactly the records Chroma's own `where` (the vector side's filter) keeps."""
    from index.client import PRODUCTS, REVIEWS
    from index.search import Filters, where_clause

    index = search_env["index"]
    some_ids = [p["id"] for p in search_env["products"][:7]]
    cases = [Filters(max_price=300), Filters(min_price=100, max_price=900, in_stock=True), Filters(min_rating=4.5),
             Filters(max_rating=3.0), Filters(category=next(iter(index.categories()))), Filters(in_stock=False),
             Filters(product_ids=some_ids, min_rating=1)]
    for name in (PRODUCTS, REVIEWS):
        kw = index.keyword(name)
        col = index.collection(name)
        for f in cases:
            expected = set(col.get(where=where_clause(f), include=[])["ids"])
            assert set(kw.passing_ids(f)) == expected, (name, f)
        assert kw.mask(Filters()).all()
    products = index.keyword(PRODUCTS).mask(cases[0])
    assert products.any() and not products.all()  # the price filter really splits the catalog


def test_vector_search_scoped_by_ids_equals_chromas_where(search_env, monkeypatch):
    """Hybrid search hands Chroma the ids that pass the filters (numpy columns) instead of a `where`; the
    neighbours must be the ones Chroma's own filter gives.
    """
    from index.client import PRODUCTS, REVIEWS
    from index.search import SearchIndex

    shared = search_env["index"]
    where_only = SearchIndex(search_env["settings"], client=shared.client, ef=shared.ef)  # no keyword side loaded
    cases = [(PRODUCTS, "wireless headphones", Filters(max_price=300, in_stock=True)),
             (PRODUCTS, "gaming laptop", Filters(min_rating=4.0, min_price=800)),
             (PRODUCTS, "soundbar", Filters(category="soundbars")),
             (PRODUCTS, "camera", Filters(max_price=1.0)),
             (REVIEWS, "battery life", Filters(max_rating=2)),
             (REVIEWS, "picture quality", Filters(product_ids=[search_env["placed"][r["id"]]
                                                                for r in search_env["reviews"][:3]]))]
    sent: list[set[str]] = []
    query = type(shared.collection(PRODUCTS)).query

    def recording_query(self, *args, **kwargs):
        sent.append({key for key in ("ids", "where") if kwargs.get(key) is not None})
        return query(self, *args, **kwargs)

    monkeypatch.setattr(type(shared.collection(PRODUCTS)), "query", recording_query)
    nonempty = 0
    for name, text, f in cases:
        shared.keyword(name)
        by_ids = shared._vector(name, text, f, 50)
        by_where = where_only._vector(name, text, f, 50)
        assert [h[0] for h in by_ids] == [h[0] for h in by_where], (name, text, f)
        nonempty += bool(by_ids)
    assert nonempty >= 4
    assert {"ids"} in sent and {"where"} in sent and not any(s == {"ids", "where"} for s in sent)


def test_insight_rows_and_nearest_products_without_a_where_match_chromas_where(search_env):
    """review_metadata reads the keyword side's snapshot and nearest_products scopes by ids once the keyword side
    is loaded; both must give what Chroma's own `where` gives.
    """
    from index.client import PRODUCTS, REVIEWS
    from index.search import SearchIndex

    shared = search_env["index"]
    where_only = SearchIndex(search_env["settings"], client=shared.client, ef=shared.ef)  # no keyword side loaded
    shared.keyword(REVIEWS), shared.keyword(PRODUCTS)
    product_ids = [search_env["placed"][r["id"]] for r in search_env["reviews"][:4]]
    for f in (Filters(), Filters(max_rating=2), Filters(product_ids=product_ids),
              Filters(category=next(iter(shared.categories())))):
        mine = sorted((m["review_id"], d) for d, m in shared.review_metadata(f))
        theirs = sorted((m["review_id"], d) for d, m in where_only.review_metadata(f))
        assert mine == theirs, f
    assert shared.review_metadata(Filters(max_rating=2))
    ids, vectors = shared.embeddings_of(product_ids[:1])
    exclude = set(product_ids[:1])
    for f in (None, Filters(max_price=300, in_stock=True), Filters(min_rating=4.0), Filters(max_price=0.01)):
        mine = [h.id for h in shared.nearest_products(vectors[0], exclude, 5, f)]
        theirs = [h.id for h in where_only.nearest_products(vectors[0], exclude, 5, f)]
        assert mine == theirs, f
        assert not exclude & set(mine)
    assert shared.nearest_products(vectors[0], exclude, 5, Filters(max_price=300, in_stock=True))


def test_a_phrase_the_query_repeats_is_searched_once():
    """A small model that loops writes "laptops, laptops, laptops, ..."; the search (and its heading) reads it once."""
    assert parse_query("laptops, laptops, laptops, laptops") == ("laptops", {})
    assert parse_query("tv, soundbar, tv under $500") == ("tv, soundbar", {"max_price": 500.0})
    assert parse_query("battery, sound, AMD Ryzen 7") == ("battery, sound, AMD Ryzen 7", {})


def test_a_looping_query_cut_mid_phrase_is_read_once():
    from index.search import parse_query

    assert parse_query("laptops, laptops, laptops, lap")[0] == "laptops"
    assert parse_query("tv, soundbar")[0] == "tv, soundbar"


def test_a_review_search_whose_product_names_a_category_keeps_to_that_category(ctx, search_env):
    # the walk of session 18: "电视有哪些差评？" became search_reviews(query="电视", product="tvs", max_rating=2); "tvs"
    # is no title, and the closest title by words held no bad review, so nothing was found
    from tools.search import search_reviews

    cats = {p["id"]: p["category"] for p in search_env["products"]}
    result = search_reviews(ctx, "电视", product="tvs", max_rating=2, k=20)
    bad_tv = {r["id"] for r in search_env["reviews"]
              if cats.get(search_env["placed"][r["id"]]) == "TVs" and r["rating"] <= 2}
    assert len(bad_tv) > 1 and {r.review_id for r in result.reviews} == bad_tv  # every one, of every TV
    # the walk of session 19: the model wrote the Chinese word itself as the product ("电视", no title holds it)
    result = search_reviews(ctx, "电视", product="电视", max_rating=2, k=20)
    assert {r.review_id for r in result.reviews} == bad_tv
    # a product its title names is still that product
    named = search_reviews(ctx, "sound", product="Bose SoundLink Flex SE", k=10)
    assert {r.product for r in named.reviews} == {"Bose SoundLink Flex SE Bluetooth Speaker"}
