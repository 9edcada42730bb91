"""What a reply posted in the brand's name may hold (socialcare.cases.public_text), and that the
outbox itself refuses the rest, so the CLI's replies are held to it as the web's are."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases.models import Reply
from socialcare.cases.outbox import create_reply
from socialcare.cases.public_text import check
from tests.factories import make_account, make_agent, make_case, make_post

KEPT = [
    "plain ascii, with punctuation: ok?",
    "line one\nline two\ttabbed",
    "windows line\r\nbreak",
    "family \U0001f468\u200d\U0001f469\u200d\U0001f467 and heart \u2764\ufe0f",
    "Scotland \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f!",
    "Hebrew \u05e9\u05dc\u05d5\u05dd\u200f and Arabic \u0645\u0631\u062d\u0628\u0627\u061c",
    "Persian \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 and Hindi \u0915\u094d\u200d\u0937",
    "soft\u00adhyphen and e\u0301\u0301\u0301\u0301\u0301 many accents",
]
REFUSED = [
    ("abc\x1b[31mred", "[ESC]", 4),
    ("bell \x07", "[BEL]", 6),
    ("nul \x00", "[NUL]", 5),
    ("lone\rcarriage", "[CR]", 5),
    ("del\x7f", "[DEL]", 4),
    ("c1 \x85 next line", "[U+0085]", 4),
    ("e\u0301\u0301\u0301\u0301\u0301 then \u202e", "[RLO]", 13),
    ("\u202aembedded\u202c", "[LRE]", 1),
    ("\u2067isolate", "[RLI]", 1),
    ("smuggled \U000e0069\U000e0067\U000e006e", "[U+E0069]", 10),
    ("flag without cancel \U0001f3f4\U000e0067\U000e0062", "[U+E0067]", 22),
    ("half a pair \ud83d", "[U+D83D]", 13),
]


@pytest.mark.parametrize("text", KEPT)
def test_text_people_write_is_kept(text: str) -> None:
    check(text)


@pytest.mark.parametrize(("text", "named", "at"), REFUSED)
def test_characters_that_act_unseen_are_refused_by_name_and_place(
    text: str, named: str, at: int
) -> None:
    with pytest.raises(ValueError) as refused:
        check(text, what="a canned reply")
    message = str(refused.value)
    assert message.startswith(f"a canned reply may not contain {named} (")
    assert message.endswith(f"at character {at}: remove it")


def test_the_outbox_refuses_such_a_reply_and_stores_nothing(session: Session) -> None:
    account = make_account(session, "acme")
    agent = make_agent(session, "ann")
    case = make_case(
        session, account, make_post(session, account, "help"), status="claimed", claimed_by=agent.id
    )
    with pytest.raises(ValueError, match=r"\[ESC\]"):
        create_reply(session=session, case_id=case.id, agent=agent, text="hi \x1b]0;owned\x07")
    assert session.scalar(select(func.count()).select_from(Reply)) == 0
    reply = create_reply(session=session, case_id=case.id, agent=agent, text="hi \U0001f44b")
    assert reply.text == "hi \U0001f44b"
