"""What a review or support message names: brands, model numbers and prices (English and Chinese).

Rules, as for sentiment (index.sentiment): no entity model ships on this machine, and these three kinds are shapes more
than meanings. A brand is one of the catalog's own brands, found as a whole word (a substring in Chinese text); a
model number is a code of letters and digits ("QN90C", "WH-1000XM4", "i7-1360P", "AP-265"), not an order id, a size
or a quantity with its unit; a price is an amount with a currency sign or word ("$1,299.99", "350 dollars", "¥199",
"199元", "200块"). Accuracy on hand-labelled text shopdesk did not write: bench/entity_accuracy.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_BEFORE = {"$": "USD", "us$": "USD", "usd": "USD", "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP", "¥": "CNY",
           "￥": "CNY", "rmb": "CNY", "cny": "CNY"}
_AFTER = {"dollar": "USD", "dollars": "USD", "bucks": "USD", "usd": "USD", "euro": "EUR", "euros": "EUR",
          "eur": "EUR", "pound": "GBP", "pounds": "GBP", "gbp": "GBP", "元": "CNY", "块": "CNY", "块钱": "CNY",
          "rmb": "CNY", "yuan": "CNY", "cny": "CNY", "美元": "USD", "美金": "USD", "欧元": "EUR", "英镑": "GBP",
          "￥": "CNY", "¥": "CNY"}  # "价格4279￥"
_PRICE = re.compile(
    r"(?P<sign>us\$|\$|€|£|¥|￥|\b(?:usd|eur|gbp|rmb|cny)\b)\s?(?P<a>" + _NUMBER + r")"
    r"|(?<![0-9a-z.,])(?P<b>" + _NUMBER + r")\s?(?P<word>块钱|美元|美金|欧元|英镑|元|块|￥|¥|"
    r"(?:dollars?|bucks|usd|euros?|eur|pounds?|gbp|rmb|yuan|cny)\b)",
    re.IGNORECASE,
)
# Word edges in Latin script only: Chinese writes no spaces, so "华硕A8的" holds the code A8 and "认为ACER是" the brand.
_EDGE_BEFORE, _EDGE_AFTER = r"(?<![A-Za-z0-9_-])", r"(?![A-Za-z0-9_-])"
# letters and digits mixed, parts joined by a hyphen; at least one of each
_CODE = re.compile(r"(?<![A-Za-z0-9_#.-])(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9]+(?:-[a-z0-9]+)*" + _EDGE_AFTER,
                   re.IGNORECASE)
_NOT_A_MODEL = re.compile(
    r"^(?:\d+(?:st|nd|rd|th)"  # ordinals
    r"|\d+-?(?:k|p|mp|gb|tb|mb|kb|ghz|mhz|hz|mah|wh|w|v|mm|cm|m|km|in|ft|lbs?|oz|kg|g|ms|x|am|pm|h|hrs?|mins?|s|yrs?|d"
    r"|pcs?|pack|gen|inch|inches|ml|l|fps|bit|core|cores|way|day|days|year|years|month|months|usd)"  # quantity+unit
    r"|\d+-[a-z]+"  # a count: "13-piece", "16-Channel"
    r"|[a-z]\d?|(?:usb|hdmi|wifi|wi-fi|bluetooth|covid)-?\d*(?:\.\d)?)$",
    re.IGNORECASE,
)
_SHORT_MODEL = re.compile(r"^[A-Z]\d$")  # "M3", "S9", "C3": two characters, only as a capital and a digit
# a series in capitals and its number, apart: "RTX 4080", "GTX 1660"
_SERIES = re.compile(_EDGE_BEFORE + r"[A-Z]{2,5} \d{3,4}[A-Za-z]{0,3}" + _EDGE_AFTER)
_ORDER_ID = re.compile(r"^(?:[a-z]{1,3})?\d{5,}$", re.IGNORECASE)  # "W2611340", "S0000276": an order, not a model


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str  # ISO code: USD, EUR, GBP, CNY


@dataclass(frozen=True)
class Entities:
    brands: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    prices: tuple[Price, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.brands or self.models or self.prices)


def prices(text: str) -> tuple[Price, ...]:
    """Amounts with a currency sign or word, in order of appearance."""
    out: list[Price] = []
    for m in _PRICE.finditer(text or ""):
        if m.group("a"):
            amount, currency = m.group("a"), _BEFORE[m.group("sign").lower()]
        else:
            amount, currency = m.group("b"), _AFTER[m.group("word").lower()]
        out.append(Price(Decimal(amount.replace(",", "")), currency))
    return tuple(dict.fromkeys(out))


def models(text: str) -> tuple[str, ...]:
    """Model numbers: codes that mix letters and digits, less ordinals, quantities with units and order ids."""
    text = text or ""
    found = []
    series = [m for m in _SERIES.finditer(text) if not _NOT_A_MODEL.match(m.group(0).split(" ")[1])]
    for m in _CODE.finditer(text):
        code = m.group(0)
        if any(s.start() <= m.start() and m.end() <= s.end() for s in series):
            continue
        if _SHORT_MODEL.match(code) or not (_NOT_A_MODEL.match(code) or _ORDER_ID.match(code) or len(code) < 3):
            found.append((m.start(), code))
    found += [(m.start(), m.group(0)) for m in series]
    return tuple(dict.fromkeys(code for _, code in sorted(found)))


# Chinese names of brands, keyed by the brand as a catalog writes it (lower case). A Chinese customer writes 索尼, not
# Sony ("我的索尼耳机坏了"), and the catalog writes Sony: the name counts as the catalog's brand. Only names that mean
# nothing else in a shop's text are here (Bose's 博士 is also "doctor", Brother's 兄弟 "brother": left out).
BRAND_ZH: dict[str, tuple[str, ...]] = {
    "sony": ("索尼",), "samsung": ("三星",), "apple": ("苹果",), "hp": ("惠普",), "lenovo": ("联想",),
    "dell": ("戴尔",), "acer": ("宏碁", "宏基"), "asus": ("华硕",), "msi": ("微星",), "microsoft": ("微软",),
    "hisense": ("海信",), "google": ("谷歌",), "philips": ("飞利浦",), "nintendo": ("任天堂",), "dji": ("大疆",),
    "sandisk": ("闪迪",), "yamaha": ("雅马哈",), "panasonic": ("松下",), "denon": ("天龙",), "onkyo": ("安桥",),
    "casio": ("卡西欧",), "roland": ("罗兰",), "duracell": ("金霸王",), "lexar": ("雷克沙",), "netgear": ("网件",),
    "tp-link": ("普联",), "lg": ("乐金",), "huawei": ("华为",), "xiaomi": ("小米",), "logitech": ("罗技",),
    "canon": ("佳能",), "nikon": ("尼康",), "toshiba": ("东芝",), "sennheiser": ("森海塞尔",), "garmin": ("佳明",),
    "anker": ("安克",), "razer": ("雷蛇",), "jabra": ("捷波朗",), "audio-technica": ("铁三角",),
    "marshall": ("马歇尔",), "epson": ("爱普生",), "intel": ("英特尔",), "nvidia": ("英伟达",),
}

# A Chinese name that is also a common word counts only before a product: 三星 is Samsung in "三星电视" and "三星的
# 显示器", but three stars in "三星级酒店" and "只能给三星".
_PRODUCT_ZH = ("手机|电视|显示器|屏|平板|笔记本|电脑|耳机|音箱|音响|冰箱|洗衣机|空调|手表|相机"
               "|硬盘|固态|内存|存储卡|U盘|充电")
BRAND_ZH_ONLY_BEFORE = {"三星": rf"(?=的?(?:{_PRODUCT_ZH}|[A-Za-z0-9]))"}


@lru_cache(maxsize=8)
def _brand_pattern(known: frozenset[str]) -> tuple[re.Pattern | None, dict[str, str]]:
    """One pattern for every form of the brands in `known` (longest first, so "LG Electronics" wins over "LG" where
    both start), and the brand each form stands for; compiled once per brand list.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    forms: dict[str, str] = {}
    for brand in sorted(known):
        if not any(c.isalpha() for c in brand) or brand.lower() in ENGLISH_STOP_WORDS:
            continue
        for form in ({brand, brand.upper()} if brand.isascii() else {brand}):
            forms.setdefault(form, brand)
    for brand in sorted(known):  # after every brand's own forms: a catalog that writes 索尼 itself keeps it
        for form in BRAND_ZH.get(brand.lower(), ()):
            forms.setdefault(form, brand)
    if not forms:
        return None, forms
    alternatives = [re.escape(f) + BRAND_ZH_ONLY_BEFORE.get(f, "") if not f.isascii()
                    else _EDGE_BEFORE + re.escape(f) + _EDGE_AFTER for f in sorted(forms, key=len, reverse=True)]
    return re.compile("|".join(alternatives)), forms


def brands(text: str, known: Iterable[str]) -> tuple[str, ...]:
    """The brands of `known` (the catalog's) that `text` names, in order of appearance, each once.

    A Latin-script brand counts written as the catalog writes it or in capitals ("Sony", "SONY"; "TP-Link"), never in
    lower case, since brands are often words ("Ring", "Apple", "Blink"); one that is an English stop word ("My") or
    has no letter ("$100", a catalog's mistake) does not count at all. A Chinese brand counts wherever it appears,
    and so does a brand's Chinese name (BRAND_ZH: 索尼 names the catalog's Sony).
    """
    pattern, forms = _brand_pattern(frozenset(b.strip() for b in known if b and b.strip()))
    if pattern is None:
        return ()
    return tuple(dict.fromkeys(forms[m.group(0)] for m in pattern.finditer(text or "")))


def extract(text: str, known_brands: Iterable[str] = ()) -> Entities:
    """The brands (of `known_brands`), model numbers and prices that `text` names."""
    named = brands(text, known_brands)
    codes = tuple(m for m in models(text) if m.lower() not in {b.lower() for b in named})  # "Insta360" is a brand
    return Entities(brands=named, models=codes, prices=prices(text))
