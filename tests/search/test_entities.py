"""index.entities: brands, model numbers and prices named in reviews and support messages, English and Chinese."""

from decimal import Decimal

import pytest

from index.entities import Price, brands, extract, models, prices

CATALOG = ["Sony", "LG", "LG Electronics", "Apple", "Ring", "TP-Link", "My", "$100", "Insta360", "索尼", "iPad"]


@pytest.mark.parametrize(("text", "want"), [
    ("It cost $1,299.99 and broke", [("1299.99", "USD")]),
    ("reimburse 350 dollars", [("350", "USD")]),
    ("refunding$3", [("3", "USD")]),
    ("I paid 200 bucks, then €15 shipping and £9.50", [("200", "USD"), ("15", "EUR"), ("9.50", "GBP")]),
    ("耳机花了1299元，太贵了", [("1299", "CNY")]),
    ("退款200块钱", [("200", "CNY")]),
    ("￥2,399 买的", [("2399", "CNY")]),
    ("order #W2611340 and invoice #00108, zip 75227, 3 items", []),
])
def test_prices(text, want):
    assert prices(text) == tuple(Price(Decimal(a), c) for a, c in want)


@pytest.mark.parametrize(("text", "want"), [
    ("My Sony WH-1000XM4 stopped charging", ["WH-1000XM4"]),
    ("Core i7-13700F with a GeForce RTX 4060Ti", ["i7-13700F", "RTX 4060Ti"]),
    ("the OLED C3 and the Apple M3 chip", ["C3", "M3"]),
    # order ids, sizes, counts, quantities with units, ordinals and ports are not model numbers
    ("order #W2611340, S0000276, 13-piece kit, 3-pack, 2nd generation, 4K 120Hz 16GB 12MP, USB-C, 10.9-inch, x2", []),
])
def test_models(text, want):
    assert list(models(text)) == want


def test_brands_as_the_catalog_writes_them_never_in_lower_case():
    assert brands("My Ring doorbell; my ring finger; SONY and sony", CATALOG) == ("Ring", "Sony")
    assert brands("an LG Electronics monitor and a TP-Link router", CATALOG) == ("LG Electronics", "TP-Link")
    assert brands("索尼耳机很好", CATALOG) == ("索尼",)
    assert brands("it was $100 at the store", CATALOG) == ()  # a catalog "brand" with no letter is no brand


def test_a_brand_named_in_chinese_is_the_catalogs_brand():
    assert brands("我的苹果耳机和乐金显示器", ["Apple", "LG", "Samsung"]) == ("Apple", "LG")
    assert brands("三星电视花了3999元", ["SAMSUNG"]) == ("SAMSUNG",)  # as the catalog writes it
    assert brands("三星电视", ["Sony"]) == ()  # a brand the catalog does not carry is not named
    assert extract("我的索尼耳机花了1299元，已经坏了", ["Sony"]).brands == ("Sony",)


def test_chinese_text_has_no_spaces_around_codes_and_latin_brands():
    e = extract("没我的华硕A8的散热好，一直认为ACER是高性价比的代名词，价格4279￥", ["ASUS", "Acer"])
    assert e.brands == ("ASUS", "Acer") and e.models == ("A8",) and e.prices == (Price(Decimal("4279"), "CNY"),)
    assert brands("我的Sony耳机坏了", ["Sony"]) == ("Sony",)


def test_three_stars_are_no_samsung():
    assert brands("三星级的酒店，只能给三星，评三星都觉得高", ["Samsung"]) == ()
    assert brands("我的三星电视和三星的显示器，还有三星S24", ["Samsung"]) == ("Samsung",)


def test_a_brand_that_looks_like_a_code_is_not_a_model_too():
    e = extract("The Insta360 GO 3 and an iPad for $100", CATALOG)
    assert e.brands == ("Insta360", "iPad") and "Insta360" not in e.models
    assert e.prices == (Price(Decimal("100"), "USD"),)
    assert not extract("thanks, that is all", CATALOG)


def test_accuracy_on_the_hand_labelled_texts_holds():
    # bench/entity_accuracy.py on its test half (Bitext requests and real catalog titles, labelled by reading them):
    # session 19 measured brands 23/23, models 17 of 18 found and labelled, prices 5/5, with no wrong price
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from entity_accuracy import main

    report = main([])
    counts = report["test"]["counts"]
    assert counts["brands"] == [23, 23, 23]
    assert counts["prices"] == [5, 5, 5]
    tp, found, labelled = counts["models"]
    assert labelled == 18 and tp >= 17 and found - tp <= 1
    # the 48 real Chinese reviews (session 22; read before the Chinese rules were written, so not held out):
    # [right, found, labelled]; the one wrong find is WIN7, an operating system taken for a model
    zh = report["all"]["counts"]
    assert (zh["brands"], zh["models"], zh["prices"]) == ([14, 14, 14], [1, 2, 1], [20, 20, 20])
