"""Language identification: offline, ISO 639-1 codes, and "und" rather than a guess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from socialcare.posts import language

POSTS = {
    "fa": "سفارشم هنوز نرسیده و پشتیبانی هم جواب نمیده",
    "ru": "@mts_support Мой интернет не работает третий день, что происходит?",
    "ar": "الطلب لم يصل بعد وخدمة العملاء لا ترد",
    "es": "@iberia Mi maleta no ha llegado todavía y nadie me responde https://t.co/x1",
    "en": "@AmazonHelp where is my package?? ordered two weeks ago #fail",
}


def test_it_detects_with_the_network_unreachable(tmp_path: Path) -> None:
    # A fresh interpreter whose every connection fails, with an empty model cache: the bundled
    # model must be the one loaded, and nothing may be fetched.
    code = textwrap.dedent(
        """
        import json, socket, sys

        def refuse(*args, **kwargs):
            raise OSError("network unreachable (test)")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        from socialcare.posts.language import detect_languages

        print(json.dumps(detect_languages(json.loads(sys.stdin.read()))))
        """
    )
    env = {**os.environ, "FTLANG_CACHE": str(tmp_path), "HTTPS_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(list(POSTS.values())),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == list(POSTS)
    assert list(tmp_path.iterdir()) == []  # no model cached: nothing was downloaded


@pytest.mark.parametrize(("code", "text"), list(POSTS.items()))
def test_it_names_the_language_of_a_customer_post(code: str, text: str) -> None:
    assert language.detect_language(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ok",
        "wtf",
        "@brand 👍 https://t.co/abc",
        "Order 12345 😡😡😡",
        "RT @someone: lol",
        "la app no funciona help please",  # Spanish and English half and half
    ],
)
def test_short_and_mixed_posts_are_unknown(text: str) -> None:
    assert language.detect_language(text) == language.UNKNOWN


def test_mentions_links_and_emoji_are_not_words() -> None:
    cleaned = language.words_of("@user_1 RT 😡 ¡Hola! #ayuda 123 https://t.co/x www.x.com &amp;")
    assert cleaned == "Hola! ayuda"
    assert language.letters(cleaned) == 9


def test_combining_marks_stay_inside_their_words() -> None:
    # Devanagari vowel signs are marks, not letters: dropping them would split every word.
    assert language.words_of("मेरा ऑर्डर नहीं आया") == "मेरा ऑर्डर नहीं आया"


@pytest.mark.parametrize(
    ("label", "code"), [("fa", "fa"), ("arz", "ar"), ("azb", "az"), ("yue", "zh"), ("ceb", "und")]
)
def test_codes_are_iso_639_1_or_unknown(label: str, code: str) -> None:
    assert language._code(label) == code


def test_every_detected_code_is_two_letters_or_unknown() -> None:
    texts = [*POSTS.values(), "Danke schön für nichts", "Merci beaucoup pour rien", "ok"]
    for got in language.detect_languages(texts):
        assert got == language.UNKNOWN or (len(got) == 2 and got.isalpha() and got.islower())
