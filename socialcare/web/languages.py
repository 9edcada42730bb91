"""The languages of the queue: the filter menu's choices and the floor's open cases by language."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from socialcare.cases.models import OPEN_STATUSES, Case
from socialcare.posts.models import Post

UNKNOWN = "und"
NOT_DETECTED = "—"  # a case whose post was stored before languages were detected


def is_language_code(value: str) -> bool:
    """An ISO 639-1 code (two lowercase letters) or "und": what posts.language holds."""
    return value == UNKNOWN or (len(value) == 2 and all("a" <= ch <= "z" for ch in value))


def language_menu(session: Session) -> list[str]:
    """The languages customer posts have been seen in, for the queue's filter menu.

    A loose index scan of ix_posts_language: each step asks for the next value above the last,
    so a few dozen languages among millions of posts cost a few dozen probes, not a scan."""
    first = select(func.min(Post.language)).scalar_subquery()
    values = select(first.label("value")).cte("language_values", recursive=True)
    following = select(func.min(Post.language)).where(Post.language > values.c.value)
    values = values.union_all(
        select(following.scalar_subquery()).where(values.c.value.is_not(None))
    )
    found = session.scalars(select(values.c.value).where(values.c.value.is_not(None)))
    return sorted(str(v) for v in found)


def open_by_language(session: Session) -> list[tuple[str, int]]:
    """How many cases are open per language of their first post, most first."""
    rows = session.execute(
        select(Post.language, func.count())
        .select_from(Case)
        .join(Post, Post.id == Case.root_post_id)
        .where(Case.status.in_(OPEN_STATUSES))
        .group_by(Post.language)
    ).all()
    counts = [(language or NOT_DETECTED, int(n)) for language, n in rows]
    return sorted(counts, key=lambda item: (-item[1], item[0]))
