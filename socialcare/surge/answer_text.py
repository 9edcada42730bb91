"""The text of a surge's one answer: the lead's template checked, and filled in per customer
with {handle} and {quote} (the start of the customer's own post), cut to the platform's length."""

from __future__ import annotations

import re

import regex

from socialcare.cases import lengths, public_text

TEMPLATE_LIMIT = 2000
QUOTE_MAX = 80  # graphemes of the customer's post, at most, before any cut to fit
ELLIPSIS = "…"
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
NAMES = ("handle", "quote")
LEADING_MENTIONS = re.compile(r"^(?:\s*@[\w.@-]+)+\s*")
GRAPHEME = regex.compile(r"\X")


def check_template(text: str) -> str:
    """The template stripped; ValueError when empty, too long, holding a character that may
    not be posted, or a {placeholder} other than {handle} and {quote}."""
    text = (text or "").strip()
    if not text:
        raise ValueError("the answer needs text")
    if len(text) > TEMPLATE_LIMIT:
        raise ValueError(f"the answer is {len(text)} characters; at most {TEMPLATE_LIMIT}")
    public_text.check(text, what="the answer")
    unknown = sorted({m.group(1) for m in PLACEHOLDER.finditer(text)} - set(NAMES))
    if unknown:
        names = ", ".join("{" + n + "}" for n in unknown)
        raise ValueError(f"the answer holds {names}: only {{handle}} and {{quote}} are filled in")
    return text


def clean(text: str) -> str:
    """text on one line, without the characters a public post may not hold."""
    kept = []
    for ch in text:
        try:
            public_text.check(ch)
        except ValueError:
            ch = " "
        kept.append(ch)
    return " ".join("".join(kept).split())


def quote_of(text: str) -> str:
    """The start of a customer's post as quoted: leading @mentions dropped, on one line, at
    most QUOTE_MAX graphemes (cut at a word, with an ellipsis)."""
    body = clean(LEADING_MENTIONS.sub("", text))
    graphemes = GRAPHEME.findall(body)
    if len(graphemes) <= QUOTE_MAX:
        return body
    cut = "".join(graphemes[:QUOTE_MAX])
    head, space, _ = cut.rpartition(" ")
    return (head if space and len(head) > QUOTE_MAX // 2 else cut).rstrip() + ELLIPSIS


def _fill(template: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def render(template: str, *, handle: str, quote: str, platform: str) -> str:
    """The reply to one customer: the quote cut until it fits the platform's length; ValueError
    when even without a quote it does not, or it may not be posted."""
    handle = clean(handle)
    limit = lengths.rule_for(platform).limit
    graphemes = GRAPHEME.findall(quote_of(quote)) if "{quote}" in template else []
    keep = len(graphemes)
    while True:
        shown = "".join(graphemes[:keep]).rstrip()
        if keep < len(graphemes):
            shown = shown + ELLIPSIS if shown else ""
        text = _fill(template, {"handle": handle, "quote": shown})
        over = lengths.length(platform, text) - limit
        if over <= 0 or keep == 0:
            break
        keep = max(0, keep - over)
    try:
        lengths.check(platform, text)
    except ValueError as exc:
        raise ValueError(f"for @{handle}: {exc}") from None
    return text
