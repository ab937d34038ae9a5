"""The words the sample shop is made of: names, streets and cities, review aspects and phrases, review titles and
openers, and the lines of its support conversations.
"""

FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph "
    "Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony Betty Mark Sandra Olivia Noah Emma Liam "
    "Ava Ethan Sophia Mason Isabella Lucas Mia Yusuf Amelia Mei Wei Hiroshi Priya Arjun Fatima Omar Sofia Mateo "
    "Chloe Ivan Aisha Lena Raj Elena Diego Grace Leo Zoe"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera "
    "Campbell Mitchell Carter Roberts Chen Wang Li Zhang Liu Patel Kim Santos Ito Ahmed"
).split()
STREETS = (
    "Main Street|Oak Avenue|Maple Drive|Cedar Street|Pine Lane|Elm Street|Washington Avenue|Lake Road|Hillcrest "
    "Drive|Park Avenue|Sunset Drive|River Road|Broadway|Highland Avenue|Willow Lane|Chestnut Street|Spruce Street|"
    "Laurel Lane|Market Street|Church Street"
).split("|")
CITIES = (
    ("New York", "NY", "100"),
    ("Los Angeles", "CA", "900"),
    ("Chicago", "IL", "606"),
    ("Houston", "TX", "770"),
    ("Phoenix", "AZ", "850"),
    ("Philadelphia", "PA", "191"),
    ("San Antonio", "TX", "782"),
    ("San Diego", "CA", "921"),
    ("Dallas", "TX", "752"),
    ("San Jose", "CA", "951"),
    ("Austin", "TX", "787"),
    ("Seattle", "WA", "981"),
    ("Denver", "CO", "802"),
    ("Boston", "MA", "021"),
    ("Portland", "OR", "972"),
    ("Atlanta", "GA", "303"),
    ("Miami", "FL", "331"),
    ("Minneapolis", "MN", "554"),
    ("Columbus", "OH", "432"),
    ("Charlotte", "NC", "282"),
    ("Nashville", "TN", "372"),
    ("Detroit", "MI", "482"),
    ("Las Vegas", "NV", "891"),
    ("Pittsburgh", "PA", "152"),
)

# Aspects a review talks about, by words in the category; every product also gets delivery, price and quality.
CATEGORY_ASPECTS = (
    ("batter", ("battery",)),
    ("headphone", ("sound", "battery", "comfort")),
    ("speaker", ("sound", "setup")),
    ("soundbar", ("sound", "setup")),
    ("tv", ("screen", "sound", "size")),
    ("monitor", ("screen", "size")),
    ("projector", ("screen", "size")),
    ("laptop", ("battery", "screen", "performance", "keyboard")),
    ("desktop", ("performance", "size")),
    ("mini pc", ("performance", "size")),
    ("tablet", ("battery", "screen", "performance")),
    ("ipad", ("battery", "screen", "performance")),
    ("watch", ("battery", "screen", "comfort")),
    ("phone", ("battery", "sound")),
    ("camera", ("picture", "battery", "setup")),
    ("security", ("picture", "setup")),
    ("smart home", ("setup", "app")),
    ("router", ("setup", "performance")),
    ("game", ("performance", "size")),
    ("musical", ("sound", "size")),
    ("streaming", ("setup", "app")),
    ("storage", ("performance", "size")),
)
GENERAL_ASPECTS = ("delivery", "price", "quality")

EN_POS = {
    "battery": [
        "The battery easily lasts all day.",
        "Battery life is excellent, I charge it far less than expected.",
        "Great battery, it holds its charge for a long time.",
    ],
    "sound": ["The sound is clear and rich.", "Sound quality is excellent, with deep bass.", "It sounds fantastic."],
    "screen": [
        "The screen is bright and sharp.",
        "Gorgeous display with vivid colours.",
        "The picture on the screen is crisp.",
    ],
    "size": ["The size is just right for my space.", "It is compact and fits perfectly.", "Perfect size."],
    "delivery": [
        "Delivery was fast and the box arrived in perfect condition.",
        "It arrived two days early, well packed.",
        "Quick delivery.",
    ],
    "price": ["Great value for the price.", "The price was excellent, cheaper than elsewhere.", "Worth every penny."],
    "quality": ["Build quality is excellent and it feels solid.", "Very well made.", "High quality materials."],
    "comfort": ["Very comfortable to wear for hours.", "Light and comfortable."],
    "performance": ["Performance is fast and smooth.", "It is fast and handles everything I throw at it."],
    "keyboard": ["The keyboard is great to type on.", "Comfortable keyboard with good travel."],
    "picture": ["Picture quality is sharp, even at night.", "The video is clear and detailed."],
    "setup": ["Setup took five minutes and was easy.", "Easy to set up and connect."],
    "app": ["The app is easy to use and reliable.", "The companion app works well."],
}
EN_NEG = {
    "battery": [
        "The battery drains within a few hours.",
        "Poor battery life, it dies quickly.",
        "The battery stopped holding a charge after a month.",
    ],
    "sound": [
        "The sound is tinny and distorted at high volume.",
        "Poor sound quality with no bass.",
        "It sounds muffled.",
    ],
    "screen": [
        "The screen is dim and has a dead pixel.",
        "The display has bad backlight bleed.",
        "Washed-out screen colours.",
    ],
    "size": ["It is much bigger than I expected.", "Too small for what I needed.", "The size is awkward."],
    "delivery": ["Delivery was late by over a week.", "The box arrived damaged.", "Shipping took far too long."],
    "price": ["Overpriced for what you get.", "Not worth the price.", "Too expensive compared to similar models."],
    "quality": [
        "It feels cheap and flimsy.",
        "Poor quality, it broke after two weeks.",
        "Stopped working after a month.",
    ],
    "comfort": ["Uncomfortable after half an hour.", "It hurts to wear for long."],
    "performance": ["Performance is slow and it lags.", "It freezes and crashes often."],
    "keyboard": ["The keyboard feels mushy.", "Several keys stick."],
    "picture": ["The picture is blurry, especially at night.", "The video quality is grainy."],
    "setup": ["Setup was a nightmare and kept failing.", "Hard to set up, the instructions are confusing."],
    "app": ["The app keeps disconnecting.", "The app is buggy and slow."],
}
ZH_POS = {
    "battery": ["电池很耐用，一天都不用充电。", "续航非常好。"],
    "sound": ["音质清晰，低音很好。", "声音非常好听。"],
    "screen": ["屏幕很亮，画面清晰。", "显示效果非常好。"],
    "size": ["大小刚刚好。", "尺寸很合适。"],
    "delivery": ["送货很快，包装完好。", "物流很快。"],
    "price": ["价格很划算。", "性价比很高。"],
    "quality": ["质量很好，做工扎实。", "做工精细。"],
    "comfort": ["戴着很舒服。"],
    "performance": ["运行很快很流畅。"],
    "keyboard": ["键盘手感很好。"],
    "picture": ["画质清晰。"],
    "setup": ["安装很简单。"],
    "app": ["应用很好用。"],
}
ZH_NEG = {
    "battery": ["电池不耐用，几个小时就没电了。", "续航很差。"],
    "sound": ["音质很差，有杂音。", "声音发闷。"],
    "screen": ["屏幕太暗，还有坏点。", "显示效果很差。"],
    "size": ["比想象的大太多了。", "尺寸不合适。"],
    "delivery": ["送货太慢了，等了一个多星期。", "包装破损。"],
    "price": ["价格太贵，不值。", "性价比很低。"],
    "quality": ["质量很差，用了两周就坏了。", "做工粗糙。"],
    "comfort": ["戴久了很不舒服。"],
    "performance": ["运行很慢，经常卡顿。"],
    "keyboard": ["键盘手感很差。"],
    "picture": ["画面模糊。"],
    "setup": ["安装很麻烦。"],
    "app": ["应用经常断开。"],
}
TITLES = {
    1: ["Very disappointed", "Do not buy", "Stopped working", "Waste of money"],
    2: ["Not great", "Disappointing", "Expected better", "Would not buy again"],
    3: ["It's okay", "Mixed feelings", "Average", "Good and bad"],
    4: ["Very good", "Happy with it", "Solid purchase", "Good value"],
    5: ["Excellent!", "Love it", "Highly recommend", "Perfect"],
}
ZH_TITLES = {1: ["非常失望"], 2: ["不太满意"], 3: ["一般"], 4: ["不错"], 5: ["非常满意"]}
OPENERS = {
    "pos": ["", "", "I bought this for my home office. ", "Bought this as a gift. ", "Second one I've bought. "],
    "neg": ["", "", "I really wanted to like this. ", "Returned it after a week. "],
}

CONVERSATION_OPENERS = {
    "pending": "Hi, can I still change the shipping address on order {oid}?",
    "processed": "Hello, where is my order {oid}? It has not arrived yet.",
    "delivered": "I received order {oid} but I'd like to know how to return an item.",
    "cancelled": "Why was order {oid} cancelled? When do I get my refund?",
    "return requested": "What is the status of the return for order {oid}?",
    "exchange requested": "I asked to exchange an item in order {oid}, what happens next?",
}
CONVERSATION_ANSWERS = {
    "pending": (
        "Order {oid} is still pending, so the address can be changed before it ships. Which address should I use?"
    ),
    "processed": (
        "Order {oid} has shipped and is on its way; you can follow it with the tracking number in your account."
    ),
    "delivered": (
        "Order {oid} was delivered. Delivered items can be returned; tell me which items and I'll start the return."
    ),
    "cancelled": "Order {oid} was cancelled and the full amount was refunded to the original payment method.",
    "return requested": "The return for order {oid} is requested; the refund follows once the items are received.",
    "exchange requested": "The exchange for order {oid} is requested; the new item ships once we receive the old one.",
}
