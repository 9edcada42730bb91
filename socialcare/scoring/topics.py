"""Topic and complaint signals from the text: transparent keyword rules, no I/O."""

from __future__ import annotations

import re

_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "safety",
        (
            "fire",
            "smoke",
            r"injur\w*",
            "unsafe",
            r"danger\w*",
            "emergency",
            "hospital",
            r"allerg\w*",
            r"food poison\w*",
        ),
    ),
    (
        "legal",
        ("lawyer", "attorney", "sue", "suing", "lawsuit", "legal action", "court", "small claims"),
    ),
    (
        "security",
        (
            r"hack(ed)?",
            r"fraud\w*",
            r"scam\w*",
            "stolen",
            r"phish\w*",
            r"unauthori[sz]ed",
            "locked out",
            "password",
            "2fa",
            "login",
            "log in",
            "sign in",
            "account access",
        ),
    ),
    (
        "outage",
        (
            "outage",
            "down",
            "not working",
            r"isn'?t working",
            r"doesn'?t work",
            r"won'?t (load|work|connect|open)",
            "no (service|signal|internet)",
            "offline",
            r"crash\w*",
            "error",
            "broken",
        ),
    ),
    (
        "billing",
        (
            r"refund\w*",
            r"charg\w*",
            r"bill\w*",
            "invoice",
            r"overcharg\w*",
            "payment",
            "paid",
            "money back",
            "fee",
        ),
    ),
    (
        "delivery",
        (
            r"deliver\w*",
            "package",
            "parcel",
            "shipping",
            "shipment",
            r"order\w*",
            "tracking",
            r"arriv\w*",
            "luggage",
            "baggage",
            r"delay\w*",
            "cancel+ed flight",
        ),
    ),
    (
        "churn",
        (
            r"cancel\w*",
            r"switch\w* to",
            "leaving",
            "never (again|using)",
            r"unsubscrib\w*",
            "close my account",
            "done with",
        ),
    ),
    ("question", (r"how (do|can|to)", "can i", "is there", "does anyone", "help me")),
    (
        "praise",
        (
            r"thank\w*",
            "love",
            "great",
            "awesome",
            "amazing",
            "best",
            r"appreciate\w*",
            "kudos",
            "shout ?out",
        ),
    ),
    (
        "spam",
        (
            "follow back",
            "giveaway",
            "promo code",
            "click here",
            "free followers",
            "crypto",
            "airdrop",
        ),
    ),
)
# Ordered: the first topic whose pattern matches wins, so the gravest come first.
TOPIC_PATTERNS: tuple[tuple[str, str], ...] = tuple(
    (name, r"\b(" + "|".join(words) + r")\b" + (r"|\?" if name == "question" else ""))
    for name, words in _WORDS
)
_COMPILED = tuple((name, re.compile(p, re.IGNORECASE)) for name, p in TOPIC_PATTERNS)

# How much each topic by itself calls for a fast answer.
TOPIC_SEVERITY = {
    "safety": 1.0,
    "security": 1.0,
    "outage": 0.9,
    "legal": 0.9,
    "churn": 0.8,
    "billing": 0.7,
    "delivery": 0.6,
    "question": 0.35,
    "other": 0.25,
    "praise": 0.0,
    "spam": 0.0,
}

_COMPLAINT = re.compile(
    r"\b(worst|terrible|awful|horrible|ridiculous|unacceptable|disappoint\w*|frustrat\w*|"
    r"angry|annoy\w*|useless|still (no|not|waiting)|no one|nobody|waiting|waited|again|"
    r"never|complain\w*|fix (this|it)|wtf|seriously|joke|pathetic|poor|rude|sucks?)\b"
    r"|!{2,}|\?{2,}",
    re.IGNORECASE,
)


def topic_of(text: str) -> str:
    """The gravest topic the text matches, or 'other'."""
    for name, pattern in _COMPILED:
        if pattern.search(text):
            return name
    return "other"


def complaint_signal(text: str) -> float:
    """How much the text reads as a complaint, in [0, 1], from complaint markers."""
    hits = len(_COMPLAINT.findall(text))
    return min(1.0, hits / 3)
