"""Regenerates tests/data/relevance.jsonl: hand-written queries with graded labels chosen by hand-written title
patterns over the real catalog (2 = what the query asks for, 1 = a reasonable alternative), stored by title.

    python tests/search/make_relevance.py
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from shopdesk.datasets import electronics_catalog  # noqa: E402
from store.importers.catalog import parse_catalog  # noqa: E402

_data = parse_catalog(electronics_catalog(), skip_bad=True)
_prices: dict = {}
for _v in _data.variants:
    _prices.setdefault(_v["product_id"], []).append(float(_v["price"]))
rows = [{"cat": p["category"], "price": min(_prices[p["id"]]), "rating": p["rating"], "title": p["name"]}
        for p in _data.products]


def sel(pattern, cat=None, maxp=None, minp=None, minr=None, exclude=None):
    out = []
    for r in rows:
        wanted = (
            re.search(pattern, r["title"], re.I)
            and not (cat and not r["cat"].startswith(cat))
            and not (maxp is not None and r["price"] > maxp)
            and not (minp is not None and r["price"] < minp)
            and not (minr is not None and (r["rating"] is None or r["rating"] < minr))
            and not (exclude and re.search(exclude, r["title"], re.I))
        )
        if wanted:
            out.append(r["title"])
    assert out, pattern
    return out

Q = []
def q(kind, query, two, one=()):
    rel = {t: 1 for t in one}
    rel.update({t: 2 for t in two})
    Q.append({"query": query, "kind": kind, "relevant": rel})

SOUNDBAR = r"sound ?bar"
ANC = r"noise[- ]cancel|ANC|WH1000XM5"
q("exact", "QN85C", sel(r"QN85C"))
q("exact", "Samsung 65 inch QN90C", sel(r'Samsung 65" Class - QN90C'), sel(r"QN90C"))
q("exact", "RTX 4070 gaming laptop", sel(r"RTX 4070", cat="Gaming Laptops"), sel(r"RTX 4080", cat="Gaming Laptops"))
q("exact", "Sony WH1000XM5", sel(r"WH1000XM5"))
q("exact", "AirPods Pro", sel(r"AirPods Pro"), sel(r"AirPods \(3rd"))
q("exact", "MacBook Air M2", sel(r"MacBook Air.*M2"), sel(r"MacBook Air.*M1"))
q("exact", "Xbox Series X", sel(r"Xbox Series X"), sel(r"Xbox Series S"))
q("exact", "PS5 console", sel(r"PS5"), sel(r"PlayStation VR2"))
q("exact", "Nintendo Switch OLED", sel(r"Nintendo Switch OLED"), sel(r"Switch OLED", exclude="Nintendo Switch"))
q("exact", "DJI Mini 3 Pro", sel(r"DJI Mini 3 Pro"), sel(r"DJI Mini 3 Drone"))
q("exact", "GoPro HERO11", sel(r"HERO11"), sel(r"HERO10"))
q("exact", "Samsung T7 portable SSD", sel(r"T7 Touch"), sel(r"SSD", cat="Hard Drives"))
q("exact", "Sonos Arc", sel(r"Sonos Arc"), sel(r"Sonos Beam"))
q("exact", "LG 65 OLED C3", sel(r'LG 65" Class - OLED C3'), sel(r"OLED C3"))
q("exact", "Apple Watch Ultra 2", sel(r"Watch Ultra 2"))
q("exact", "Galaxy Watch6", sel(r"Galaxy Watch6"), sel(r"Galaxy Watch 6"))
q("exact", "TP-Link Deco X60", sel(r"Deco X60"), sel(r"TP-Link Deco"))
q("exact", "Roland TD-07KX", sel(r"TD-07KX"), sel(r"V-Drum"))
q("exact", "Jackery Explorer 2000 Pro", sel(r"Explorer 2000"), sel(r"Jackery"))
q("exact", "Meta Quest 3", sel(r"Meta Quest 3"), sel(r"PlayStation VR2"))
q("exact", "Duracell AAA batteries", sel(r"Duracell.*AAA"), sel(r"Duracell", exclude="AAA"))
q("exact", "Hisense U75K", sel(r"U75K"), sel(r"Hisense.*A65K"))

q("category", "soundbar", sel(SOUNDBAR, cat="Soundbars"))
q("category", "smart watch", sel(r".", cat="Smart Watches"))
q("category", "mesh wifi system", sel(r"mesh", cat="Routers"), sel(r"router", cat="Routers"))
q("category", "digital piano", sel(r"digital.*piano|piano", cat="Musical"), sel(r"keyboard", cat="Musical"))
q("category", "drone", sel(r"drone", cat="Cameras"))
q("category", "video doorbell", sel(r"doorbell"))
q("category", "gaming monitor", sel(r"gaming", cat="Monitors"), sel(r".", cat="Monitors", exclude="gaming"))
q("category", "tablet", sel(r"iPad|Tab ", cat="iPad", exclude="Keyboard|Pencil"))
q("category", "portable bluetooth speaker", sel(r"portable|bluetooth", cat="Speakers"),
  sel(r"SoundLink|XB-33|XBoom", cat="Speakers"))
q("category", "smart thermostat", sel(r"thermostat"))
q("category", "noise cancelling headphones", sel(ANC, cat="Headphones"), sel(r"Px7|AirPods Pro"))
q("category", "electronic drum kit", sel(r"drum"))
q("category", "AV receiver", sel(r"receiver"))
q("category", "TV wall mount", sel(r"TV Mount"), sel(r"Mounting Service"))
q("category", "gift card", sel(r"gift card|eShop.*card|gift cards"))

q("constraint", "tv under $300", sel(r"Class - .* TV", cat="TVs", maxp=300))
q("constraint", "soundbar under $200", sel(SOUNDBAR, cat="Soundbars", maxp=200))
q("constraint", "gaming laptop under $1000", sel(r".", cat="Gaming Laptops", maxp=1000))
q("constraint", "monitor below 150 dollars", sel(r"monitor", cat="Monitors", maxp=150))
q("constraint", "headphones at least 4.5 stars", sel(r".", cat="Headphones", minr=4.5))
q("constraint", "smart watch under $250", sel(r".", cat="Smart Watches", maxp=250))
q("constraint", "85 inch tv under $1600", sel(r'^(Samsung|Sony|LG|TCL) 8[56]" Class', cat="TVs", maxp=1600))
q("constraint", "wireless earbuds under $100", sel(r"earbuds|earphones|true wireless", cat="Headphones", maxp=100))
q("constraint", "tablet with 4.8 or more stars", sel(r"iPad|Tab ", cat="iPad", minr=4.8, exclude="Keyboard|Pencil"))
q("constraint", "mesh wifi under $250", sel(r"mesh", cat="Routers", maxp=250))
q("constraint", "oled tv between $1000 and $1500", sel(r"OLED", cat="TVs", minp=1000, maxp=1500))
q("constraint", "security camera 4.7+ stars", sel(r"cam", cat="Home Security", minr=4.7))

q("vague", "see who is at my front door", sel(r"doorbell"))
q("vague", "learn to play piano at home", sel(r"piano", cat="Musical"), sel(r"keyboard", cat="Musical"))
q("vague", "fast storage to back up my photos on the go", sel(r"SSD", cat="Hard Drives"), sel(r"microSD"))
q("vague", "film my ski trip", sel(r"action camera"), sel(r"drone"))
q("vague", "fix wifi dead zones in a big house", sel(r"mesh|whole-home|whole home", cat="Routers"),
  sel(r"router", cat="Routers"))
q("vague", "sing songs at a party", sel(r"karaoke"), sel(r"party speaker"))
q("vague", "backup power for camping", sel(r"power station"))
q("vague", "control the lights with my phone", sel(r"smart (bulbs|dimmer)|hue|smart.*light"), sel(r"smart.*plug"))
q("vague", "track my workouts on my wrist", sel(r".", cat="Smart Watches"))
q("vague", "present for a kid who plays Roblox", sel(r"roblox"))
q("vague", "big screen for movies without a TV", sel(r"projector"))

q("misspelling", "samsng soundbar", sel(r"Samsung.*" + SOUNDBAR, cat="Soundbars"),
  sel(SOUNDBAR, cat="Soundbars", exclude="Samsung"))
q("misspelling", "ipda air", sel(r"iPad Air"), sel(r"iPad"))
q("misspelling", "playstaton 5", sel(r"PS5"), sel(r"PlayStation"))
q("misspelling", "headphnes noise canceling", sel(ANC, cat="Headphones"), sel(r"Px7|AirPods Pro"))
q("misspelling", "macbok pro", sel(r"MacBook Pro"), sel(r"MacBook Air"))
q("misspelling", "nintedo switch", sel(r"Nintendo Switch"), sel(r"nintendo|switch"))
q("misspelling", "televison 65 inch oled", sel(r'65" Class - .*OLED', cat="TVs"), sel(r"OLED", cat="TVs"))
q("misspelling", "secuirty camera doorbell", sel(r"doorbell"))

with open(ROOT / "tests" / "data" / "relevance.jsonl", "w") as f:
    for row in Q:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")

print(len(Q), Counter(r["kind"] for r in Q), sum(len(r["relevant"]) for r in Q))
