"""Importers: real files load with the expected counts; bad input fails clearly and changes nothing; no duplicates."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from shopdesk.datasets import cdnow_transactions, electronics_catalog
from shopdesk.output import UserError
from store.importers.catalog import import_catalog
from store.importers.common import BadInputError
from store.importers.reviews import import_reviews
from store.importers.transactions import import_transactions, parse_columns
from store.models import Customer, Order, OrderItem, Payment
from store.stats import store_stats

CDNOW_COLUMNS = "customer=0,date=1,quantity=2,amount=3"


def cdnow(store, path=None, **kw):
    return import_transactions(
        store, path or cdnow_transactions(), parse_columns(CDNOW_COLUMNS), delimiter="ws", date_format="%Y%m%d", **kw
    )


def counts(store):
    return {k: v for k, v in store_stats(store)["counts"].items() if k != "import_runs"}


def test_cdnow_counts_and_reimport(sqlite_store):
    result = cdnow(sqlite_store)
    assert result["counts"]["customers"] == 23_570
    # A customer's lines of one day are one purchase occasion, as in the BG/NBD papers' CDNOW set.
    assert result["counts"]["orders"] == 67_591 and result["counts"]["rows"] == 69_659
    first = counts(sqlite_store)
    assert first["customers"] == 23_570 and first["orders"] == 67_591 and first["payments"] == 67_591
    stats = store_stats(sqlite_store)
    assert stats["orders_from"].year == 1997 and stats["orders_to"].year == 1998
    cdnow(sqlite_store)
    assert counts(sqlite_store) == first


def test_transactions_on_both_engines_with_gzip(store, tmp_path):
    lines = cdnow_transactions().read_text().splitlines()[:301]
    path = tmp_path / "cd.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    result = cdnow(store, path)
    assert result["counts"]["orders"] == 292 and result["counts"]["rows"] == 300  # same-day lines merged
    again = cdnow(store, path)
    assert "before" in again["note"]
    assert counts(store)["orders"] == 292


UCI = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,,United Kingdom
C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,United Kingdom
536368,22960,JAM MAKING SET WITH JARS,6,12/1/2010 8:34,4.25,13047,United Kingdom
C536383,35004C,SET OF 3 COLOURED  FLYING DUCKS,-1,12/1/2010 9:49,4.65,15311,United Kingdom
"""
UCI_COLUMNS = "order=InvoiceNo,product=StockCode,quantity=Quantity,date=InvoiceDate,price=UnitPrice,customer=CustomerID"


def test_online_retail_export_with_skip_bad(store, tmp_path):
    path = tmp_path / "online_retail.csv"
    path.write_text(UCI)
    args = dict(columns=parse_columns(UCI_COLUMNS), date_format="%m/%d/%Y %H:%M")
    before = counts(store)
    with pytest.raises(BadInputError, match="line 4.*customer"):
        import_transactions(store, path, **args)
    assert counts(store) == before
    result = import_transactions(store, path, skip_bad=True, **args)
    assert result["skipped"] == {"missing customer": 1}
    assert result["counts"] == {"customers": 4, "orders": 5, "returns": 2, "order_items": 6, "products": 6, "rows": 6}
    after = store_stats(store)["counts"]
    assert after["orders"] == before["orders"] + 5 and after["order_items"] == before["order_items"] + 6
    import_transactions(store, path, skip_bad=True, **args)
    assert store_stats(store)["counts"]["order_items"] == after["order_items"]


# --- one test per kind of bad input: the error names the file, the line and the field; nothing is imported


def _bad(sqlite_store, path, match, **kw):
    before = counts(sqlite_store)
    args = dict(columns=parse_columns(kw.pop("columns", "customer=id,date=day,amount=total")))
    args.update(kw)
    with pytest.raises(BadInputError) as err:
        import_transactions(sqlite_store, path, **args)
    message = str(err.value)
    assert str(path) in message
    for part in match:
        assert part in message, (part, message)
    assert counts(sqlite_store) == before
    return message


GOOD_ROWS = "id,day,total\nA1,2026-01-02,10.50\nA2,2026-01-03,7.25\n"


def test_bad_date(sqlite_store, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(GOOD_ROWS + "A3,2026-13-45,3.00\n")
    _bad(sqlite_store, p, ["line 4", "field 'date'", "bad date '2026-13-45'"])


def test_bad_number(sqlite_store, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(GOOD_ROWS + "A3,2026-01-04,twelve\n")
    _bad(sqlite_store, p, ["line 4", "field 'amount'", "bad number 'twelve'"])


def test_missing_column(sqlite_store, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(GOOD_ROWS + "A3,2026-01-04\n")
    _bad(sqlite_store, p, ["line 4", "field 'amount'", "missing column"])


def test_unknown_column_in_mapping(sqlite_store, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(GOOD_ROWS)
    _bad(
        sqlite_store,
        p,
        ["line 1", "field 'amount'", "unknown column 'price_total'"],
        columns="customer=id,date=day,amount=price_total",
    )
    with pytest.raises(UserError, match="unknown field 'shop'"):
        parse_columns("customer=0,date=1,amount=2,shop=3")


def test_empty_file(sqlite_store, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("")
    _bad(sqlite_store, p, ["the file is empty"])
    p.write_text("id,day,total\n")
    _bad(sqlite_store, p, ["no rows"])


def test_wrong_encoding(sqlite_store, tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes((GOOD_ROWS + "Zoë,2026-01-04,3.00\n").encode("latin-1"))
    _bad(sqlite_store, p, ["line 4", "wrong encoding", "UTF-8"])


def test_failed_import_in_the_middle_rolls_back(sqlite_store, tmp_path):
    """An error while writing (after customers and orders went in) leaves the store exactly as it was."""
    from store.db import Store
    from store.importers import common

    p = tmp_path / "t.csv"
    p.write_text(GOOD_ROWS)
    before = counts(sqlite_store)
    original = common.BulkWriter.insert

    def failing(self, model, rows):
        if model.__tablename__ == "payments":
            raise RuntimeError("disk full")
        return original(self, model, rows)

    common.BulkWriter.insert = failing
    try:
        with pytest.raises(RuntimeError):
            import_transactions(sqlite_store, p, parse_columns("customer=id,date=day,amount=total"))
    finally:
        common.BulkWriter.insert = original
    assert counts(sqlite_store) == before
    assert isinstance(sqlite_store, Store)


# --- catalog and reviews


def test_catalog_import(store):
    with pytest.raises(BadInputError, match="line 211: field 'price': missing price"):
        import_catalog(store, electronics_catalog())
    assert counts(store)["products"] == 0
    result = import_catalog(store, electronics_catalog(), skip_bad=True)
    assert result["counts"]["products"] == 552 and result["skipped"]["missing price"] == 1
    first = counts(store)
    assert first["products"] == 552 and first["variants"] == result["counts"]["variants"] > 552
    import_catalog(store, electronics_catalog(), skip_bad=True)
    assert counts(store) == first


def test_catalog_price_ranges_become_variants(sqlite_store, tmp_path):
    from sqlalchemy import select

    from store.models import Product

    p = tmp_path / "cat.csv"
    p.write_text(
        "Sub Category,Price,Rating,Title,Feature\n"
        '"Laptops & Notebook Computers","$1,149.99through-$1,499.99","Rated 4.5 out of 5 stars based on 12 '
        'reviews.",Acme Book 14,Fast   Light\n'
        "Headphones & Earbuds,$299.99 ,No Reviews,Acme Buds,Noise cancelling\n"
    )
    import_catalog(sqlite_store, p)
    with sqlite_store.read() as s:
        book = s.scalars(select(Product).where(Product.name == "Acme Book 14")).one()
        prices = sorted(float(v.price) for v in book.variants)
        assert prices[0] == 1149.99 and prices[-1] == 1499.99 and len(prices) == 3
        assert {tuple(v.options) for v in book.variants} == {("storage",)}
        assert book.rating == 4.5 and book.rating_count == 12 and book.description == "Fast; Light"
        buds = s.scalars(select(Product).where(Product.name == "Acme Buds")).one()
        assert {float(v.price) for v in buds.variants} == {299.99} and buds.rating_count == 0


def test_catalog_bad_inputs(sqlite_store, tmp_path):
    p = tmp_path / "cat.csv"
    p.write_text("Sub Category,Title\nTVs,Big TV\n")
    with pytest.raises(BadInputError, match="line 1: field 'price': missing column"):
        import_catalog(sqlite_store, p)
    p.write_text("Sub Category,Price,Title\nTVs,about $300,Big TV\n")
    with pytest.raises(BadInputError, match="line 2: field 'price': bad number 'about \\$300'"):
        import_catalog(sqlite_store, p)


def test_reviews_csv_and_jsonl(sample_store, tmp_path):
    from sqlalchemy import select

    from store.models import Product

    with sample_store.read() as s:
        product = s.execute(select(Product.id, Product.name).order_by(Product.id)).first()
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text(
        f'product,customer,rating,title,text,date\n{product.id},c000001,5,Great,"Loud, clear sound",'
        f'2026-05-01\n"{product.name}",,2,Meh,Battery died,2026-05-02\n'
    )
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text(json.dumps({"product": product.id, "rating": 4, "text": "很好", "language": "zh"}) + "\n")
    before = counts(sample_store)["reviews"]
    assert import_reviews(sample_store, csv_path)["counts"]["reviews"] == 2
    assert import_reviews(sample_store, jsonl)["counts"]["reviews"] == 1
    import_reviews(sample_store, csv_path)
    assert counts(sample_store)["reviews"] == before + 3
    bad = tmp_path / "bad.csv"
    bad.write_text(f"product,rating,text\n{product.id},7,Too good\n")
    with pytest.raises(BadInputError, match="line 2: field 'rating'"):
        import_reviews(sample_store, bad)
    bad.write_text("product,rating,text\nno-such-product,3,Fine\n")
    with pytest.raises(BadInputError, match="unknown product"):
        import_reviews(sample_store, bad)
    assert counts(sample_store)["reviews"] == before + 3
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"product,rating,text\nno-such-product,3,Fine\n{product.id},3,Fine\n{product.id},x,Fine\n")
    result = import_reviews(sample_store, mixed, skip_bad=True)
    assert result["skipped"] == {"bad product": 1, "bad rating": 1} and result["counts"]["reviews"] == 1
    assert counts(sample_store)["reviews"] == before + 4


# --- format detection, returns, ids and currency


def test_detects_cdnow_whitespace_header_and_compact_dates(sqlite_store):
    result = import_transactions(sqlite_store, cdnow_transactions(), parse_columns(CDNOW_COLUMNS))
    assert result["detected"] == ["delimiter whitespace", "a header line", "date format %Y%m%d"]
    assert result["counts"]["orders"] == 67_591
    stats = store_stats(sqlite_store)
    assert str(stats["orders_from"].date()) == "1997-01-01" and str(stats["orders_to"].date()) == "1998-06-30"


def test_detects_whitespace_without_header_and_dollar_amounts(sqlite_store, tmp_path):
    path = tmp_path / "tx.txt"
    path.write_text(" 00001 19970101  1   11.77\n 00002 19970112  2   $1,012.00\n")
    result = import_transactions(sqlite_store, path, parse_columns(CDNOW_COLUMNS), source="x")
    assert result["detected"] == ["delimiter whitespace", "no header line", "date format %Y%m%d"]
    with sqlite_store.read() as s:
        totals = dict(s.execute(select(Order.customer_id, Order.total)).all())
        day = s.scalar(select(Order.created_at).where(Order.customer_id == "x:00002"))
    assert totals == {"x:00001": Decimal("11.77"), "x:00002": Decimal("1012.00")}
    assert str(day.date()) == "1997-01-12"


SEMICOLON = """Kunde;Datum;Menge;Preis
4711;03.02.2024;2;10,50
4712;15.02.2024;1;7,25
4711;28.03.2024;1;3,00
"""
TAB = "customer\tdate\tamount\nA\t2024-02-03 10:15:00\t10.50\nB\t2024-02-15 09:00:00\t7.25\n"


def test_detects_semicolon_day_first_dates_and_decimal_commas(sqlite_store, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(SEMICOLON)
    columns = parse_columns("customer=Kunde,date=Datum,quantity=Menge,price=Preis")
    result = import_transactions(sqlite_store, path, columns)
    assert result["detected"] == ["delimiter semicolon", "a header line", "date format %d.%m.%Y"]
    with sqlite_store.read() as s:
        rows = s.execute(select(Order.customer_id, Order.created_at, Order.total).order_by(Order.created_at)).all()
    assert [(c, str(t.date()), v) for c, t, v in rows] == [
        ("export:4711", "2024-02-03", Decimal("21.00")),  # quantity x price: 2 x 10.50
        ("export:4712", "2024-02-15", Decimal("7.25")),
        ("export:4711", "2024-03-28", Decimal("3.00")),
    ]


def test_detects_tab_and_iso_timestamps_and_flags_override(sqlite_store, tmp_path):
    path = tmp_path / "export.tsv"
    path.write_text(TAB)
    result = import_transactions(sqlite_store, path, parse_columns("customer=customer,date=date,amount=amount"))
    assert result["detected"] == ["delimiter tab", "a header line", "date format ISO 8601"]
    assert result["counts"]["orders"] == 2
    with pytest.raises(BadInputError, match="bad date"):  # a given format is used as given, not second-guessed
        import_transactions(sqlite_store, path, parse_columns("customer=customer,date=date,amount=amount"),
                            delimiter="\t", date_format="%Y%m%d")
    explicit = import_transactions(sqlite_store, path, parse_columns("customer=customer,date=date,amount=amount"),
                                   delimiter="tab", date_format="%Y-%m-%d %H:%M:%S", header=True)
    assert explicit["detected"] == []


def test_day_and_month_order_comes_from_the_whole_file(tmp_path):
    from store.importers.transactions import detect_format

    lines = ["id,day,total"] + [f"A,1/{d}/2024,1" for d in range(1, 13)] * 50 + ["A,25/12/2024,1"]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    found = detect_format(path, parse_columns("customer=id,date=day,amount=total"))
    assert found["date_format"] == "%d/%m/%Y"


def test_returns_are_kept_as_returns(sqlite_store, tmp_path):
    path = tmp_path / "online_retail.csv"
    path.write_text(UCI)
    import_transactions(sqlite_store, path, parse_columns(UCI_COLUMNS), skip_bad=True)
    with sqlite_store.read() as s:
        ret = s.get(Order, "online_retail:C536383")
        assert ret.status == "return requested" and ret.total == Decimal("-4.65") and ret.details == {"return": True}
        assert [(p.kind, p.amount) for p in s.execute(select(Payment).where(Payment.order_id == ret.id)).scalars()] == [
            ("refund", Decimal("4.65"))
        ]
        assert s.execute(select(OrderItem.quantity).where(OrderItem.order_id == ret.id)).scalar_one() == -1
        bought = s.get(Order, "online_retail:536365")
        assert bought.status == "delivered" and bought.total == Decimal("35.64")


def test_returns_count_as_returns_not_purchases(sqlite_store, tmp_path):
    from datetime import date

    from tools.analytics.features import build_features

    path = tmp_path / "shop.csv"
    path.write_text("order,customer,date,qty,price\n1,A,2024-01-02,2,10\n2,A,2024-02-02,1,30\n"
                    "3,A,2024-02-10,-1,10\nC4,A,2024-02-11,1,5\n")
    import_transactions(sqlite_store, path,
                        parse_columns("order=order,customer=customer,date=date,quantity=qty,price=price"))
    f = build_features(sqlite_store, date(2024, 3, 1)).loc["shop:A"]
    assert f["frequency"] == 2 and f["monetary_total"] == 50.0
    assert f["returned"] == 2 and f["returned_value"] == 15.0 and f["cancelled"] == 0
    assert f["return_value_share"] == pytest.approx(0.3)


def test_float_ids_lose_their_trailing_zero(sqlite_store, tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("InvoiceNo,CustomerID,Date,Amount\n536365.0,16866.0,2024-01-02,5\n536366,16866,2024-01-03,6\n")
    import_transactions(sqlite_store, path,
                        parse_columns("order=InvoiceNo,customer=CustomerID,date=Date,amount=Amount"))
    with sqlite_store.read() as s:
        assert set(s.scalars(select(Customer.id))) == {"ids:16866"}
        assert set(s.scalars(select(Order.id))) == {"ids:536365", "ids:536366"}


def test_currency_is_stored_per_shop(sqlite_store, tmp_path):
    from shopdesk.output import UserError
    from store.shop import shop_currency

    path = tmp_path / "t.csv"
    path.write_text(GOOD_ROWS)
    assert shop_currency(sqlite_store) == "USD"
    result = import_transactions(sqlite_store, path, parse_columns("customer=id,date=day,amount=total"), currency="gbp")
    assert result["currency"] == "GBP" and shop_currency(sqlite_store) == "GBP"
    other = tmp_path / "u.csv"
    other.write_text("id,day,total\nB1,2026-01-02,1\n")
    with pytest.raises(UserError, match="in GBP.*mix currencies"):
        import_transactions(sqlite_store, other, parse_columns("customer=id,date=day,amount=total"), currency="EUR")
    with pytest.raises(UserError, match="three-letter"):
        import_transactions(sqlite_store, other, parse_columns("customer=id,date=day,amount=total"), currency="pounds")
