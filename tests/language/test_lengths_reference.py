"""Reply lengths checked against independent references, not against this code's own output.

The X numbers are twitter-text 3.1.0's parseTweet().weightedLength (the npm package, run under
node); the Bluesky numbers are Intl.Segmenter's grapheme count (what Bluesky's own client and
@atproto/lex-data count with); the Mastodon numbers are those graphemes after Mastodon's
rewrite (a link with a scheme is 23 characters, @user@domain is @user: its
StatusLengthValidator). The browser's counter (static/lengths.js) is held to the same numbers in
tests/web/test_lengths_scripts.py.
"""

from __future__ import annotations

import pytest

from socialcare.cases.lengths import length, links

# (name, text, X weighted length, Mastodon, Bluesky graphemes)
REFERENCE = [
    ("fa", "سلام، سفارش شما فردا می\u200cرسد. ممنون از صبرتان 🙏", 47, 45, 45),
    ("fa link", "پیگیری: https://example.com/track/123 و digikala.com/help سپاس", 62, 56, 62),
    ("fa path", "https://fa.wikipedia.org/wiki/ایران", 28, 28, 35),
    ("ar diacritics", "مُحَمَّدٌ رَسُولُ اللَّهِ", 25, 14, 14),
    ("ar", "نحن آسفون جداً، سيتم حل المشكلة خلال ٢٤ ساعة", 44, 43, 43),
    ("ar zwnj", "عَرَبِيّ مع تشكيل وَ\u200cZWNJ", 25, 19, 19),
    ("ru", "Здравствуйте! Мы уже проверяем ваш заказ № 12345.", 50, 49, 49),
    ("ru link", "Подробнее: yandex.ru/support, https://пример.рф/путь.", 60, 54, 53),
    ("hi", "नमस्ते, आपका ऑर्डर कल पहुँच जाएगा। क्षत्रिय स्त्री", 50, 30, 30),
    ("zh", "你好，我们会尽快处理您的订单。", 30, 15, 15),
    ("ja", "ご不便をおかけして申し訳ございません。カタカナ ｶﾀｶﾅ", 55, 28, 28),
    ("ko", "한국어 지원", 11, 6, 6),
    ("astral", "𠀀𠀁 𝐀𝐁", 9, 5, 5),
    ("emoji", "👍🏽 👨\u200d👩\u200d👧 🇮🇷 🇷🇺 1️⃣ #️⃣ ©® © ®️ ™ ❤️ ❤ ☺ ☺️", 40, 28, 28),
    (
        "emoji older zwj",
        "🏳️\u200d🌈 🏴\u200d☠️ 👩\u200d❤️\u200d👨 "
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f 👩🏽\u200d💻 👨\u200d⚕️",
        17,
        11,
        11,
    ),
    ("marks", "👍́ é ä́ ñ Å", 12, 9, 9),
    (
        "links",
        "see https://example.com/a. and yandex.ru, digikala.ir/x (file.py) note.md a.zz",
        136,
        80,
        78,
    ),
    (
        "not links",
        "شرکت.com www.example https://localhost/x http://a.b user@example.com _x.com",
        75,
        75,
        75,
    ),
    (
        "parens",
        "(https://example.com/a) https://example.com/(a) https://example.com/a?b=c.",
        74,
        74,
        74,
    ),
    ("mention", "@ana@mastodon.social hi https://example.org/x", 47, 31, 45),
    ("format", "\u200d\u200c\u200e\u2028", 6, 3, 3),
    ("punctuation", "‘quotes’ “double” — – … ′″‴", 28, 27, 27),
]

# Emoji sequences newer than twitter-text 3.1.0's emoji list (twemoji-parser 11, 2018): it counts
# their parts (❤️‍🔥 as 5). X counts every emoji as 2 "regardless of combining modifiers", and so
# do we.
NEWER_EMOJI = ["❤️\u200d🔥", "🧑🏽\u200d💻", "🧑\u200d🍳", "😶\u200d🌫️", "🫱🏻\u200d🫲🏿", "🫠"]


@pytest.mark.parametrize(("name", "text", "x", "mastodon", "bluesky"), REFERENCE)
def test_each_script_counts_as_the_platforms_count_it(name, text, x, mastodon, bluesky):
    assert (length("x", text), length("mastodon", text), length("bluesky", text)) == (
        x,
        mastodon,
        bluesky,
    )


@pytest.mark.parametrize("emoji", NEWER_EMOJI)
def test_an_emoji_counts_two_on_x_and_one_grapheme_elsewhere(emoji):
    assert length("x", emoji) == 2
    assert length("bluesky", emoji) == length("mastodon", emoji) == 1


def test_a_persian_reply_fits_x_at_280_letters_where_chinese_fits_140():
    persian = "س" * 280
    assert length("x", persian) == 280
    assert length("x", persian + "س") == 281
    assert length("x", "你" * 140) == 280
    # Arabic diacritics are code points of their own on X, part of their letter elsewhere.
    assert length("x", "مَ" * 10) == 20
    assert length("bluesky", "مَ" * 10) == length("mastodon", "مَ" * 10) == 10


def test_links_stop_where_twitter_text_stops_them():
    text = "https://fa.wikipedia.org/wiki/ایران (see example.com/a). yandex.ru!"
    assert [text[a:b] for a, b in links(text)] == [
        "https://fa.wikipedia.org/wiki/",
        "example.com/a",
        "yandex.ru",
    ]
    assert [text[a:b] for a, b in links(text, bare=False)] == ["https://fa.wikipedia.org/wiki/"]
