"""What every page module shares: the Jinja templates, a request's session and its clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from socialcare.web import queries
from socialcare.web.untrusted import untrusted

HERE = Path(__file__).parent


def _fmt_dt(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _make_templates() -> Jinja2Templates:
    # Autoescape on for every template, whatever its extension: post texts are hostile.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = _fmt_dt
    env.filters["tojson_text"] = _fmt_json
    env.filters["response_time"] = queries.response_time
    env.filters["untrusted"] = untrusted
    return Jinja2Templates(env=env)


templates = _make_templates()


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request, closed (and so rolled back) when the request ends."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def request_now(request: Request) -> datetime:
    """The app's clock: "now" for SLA countdowns and report periods."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()
