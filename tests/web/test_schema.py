"""Schemathesis over the app's own /openapi.json, as an admin with an API token, against a
database with a few teams, people, cases, replies and canned replies: no endpoint answers 500,
and every answer (status, content type, body) is one the schema describes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from socialcare.cases.workspace_models import CannedReply
from socialcare.config import Settings
from socialcare.people.service import create_token
from socialcare.web import create_app
from tests.factories import (
    T0,
    make_account,
    make_agent,
    make_case,
    make_post,
    make_reply,
    make_score,
    make_team,
)

# Per operation and mode: about 30 operations, so well under a minute on both databases.
# SCHEMA_EXAMPLES=500 makes a deeper run by hand.
EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "5"))
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Seeded:
    """Known rows, so that generated requests also hit real ones rather than only 404s."""

    token: str
    token_id: int
    ids: dict[str, list[Any]] = field(default_factory=dict)


def seed(session: Session) -> Seeded:
    account = make_account(session)
    support, billing = make_team(session, "support"), make_team(session, "billing")
    root = make_agent(session, "root", role="admin")
    ann = make_agent(session, "ann", role="agent")
    make_agent(session, "lee", role="lead")
    ann.teams = [support]
    cases = []
    for i, (priority, status) in enumerate(
        [("P1", "queued"), ("P2", "queued"), ("P3", "claimed"), ("P2", "resolved"), ("P4", "new")]
    ):
        post = make_post(session, account, f"case {i} <b>", created_at=T0 + timedelta(minutes=i))
        make_score(session, post)
        team = support if i % 2 else billing
        claimed = {"claimed_by": ann.id} if status == "claimed" else {}
        cases.append(
            make_case(
                session, account, post, priority=priority, status=status, team=team, **claimed
            )
        )
    replies = [
        make_reply(session, cases[0], state="failed", last_error="503"),
        make_reply(session, cases[2], state="sent", external_id="1790000000000000000"),
    ]
    canned = [
        CannedReply(name="hello", text="Hi @{handle}, {agent_name} here", created_by="root"),
        CannedReply(
            name="refund", text="Refunds take 5 days", team_id=billing.id, created_by="root"
        ),
    ]
    session.add_all(canned)
    secret, row = create_token(session=session, agent=root, name="schemathesis", actor="tests")
    _, other = create_token(session=session, agent=ann, name="ann's", actor="tests")
    session.commit()
    return Seeded(
        token=secret,
        token_id=row.id,
        ids={
            "case_id": [c.id for c in cases],
            "reply_id": [r.id for r in replies],
            "canned_id": [c.id for c in canned],
            "token_id": [other.id],
            "handle": ["ann", "lee"],
            "name": ["support", "billing"],
        },
    )


def test_every_api_operation_answers_as_its_schema_says_and_never_500(
    settings: Settings, engine: object, session: Session
) -> None:
    seeded = seed(session)
    (settings.broker_folder / "messages").mkdir(parents=True, exist_ok=True)  # so /readyz is 200
    app = create_app(settings, enqueue=lambda *args: None)
    app.state.closing = True  # the event stream answers its first event and ends
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    auth = {"Authorization": f"Bearer {seeded.token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation, mode in ((op, mode) for op in operations for mode in MODES):

        @given(case=operation.as_strategy(generation_mode=mode), known=st.data())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, known: st.DataObject) -> None:
            for name in case.path_parameters:
                if name in seeded.ids and known.draw(st.booleans()):
                    case.path_parameters[name] = known.draw(st.sampled_from(seeded.ids[name]))
            if case.path_parameters.get("token_id") == seeded.token_id:
                case.path_parameters["token_id"] = seeded.ids["token_id"][0]  # keep our own
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing to negate: an operation without parameters or body
            assert mode == GenerationMode.NEGATIVE, operation.path
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # schemathesis reports as an exception group
            failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    assert len(operations) >= 30, "the schema lists the API's operations"
    assert not failures, "\n\n".join(failures)


def test_nul_characters_and_ids_past_32_bits_are_refused_before_they_reach_the_database(
    settings: Settings, engine: object, session: Session
) -> None:
    seeded = seed(session)
    case_id = seeded.ids["case_id"][0]
    auth = {"Authorization": f"Bearer {seeded.token}"}
    with TestClient(create_app(settings, enqueue=lambda *args: None)) as client:
        note = client.post(f"/api/cases/{case_id}/notes", json={"text": "a\x00b"}, headers=auth)
        assert note.status_code == 422 and "NUL" in note.json()["detail"][0]["msg"]
        canned = client.post("/api/canned", json={"name": "x", "text": "\x00"}, headers=auth)
        assert canned.status_code == 422
        for url in ("/api/queue?team=%00", "/api/teams/a%00b/members", "/?topic=%00"):
            refused = client.request("PUT" if "members" in url else "GET", url, headers=auth)
            assert refused.status_code == 400, url
        too_big = client.get(f"/api/cases/{2**31}", headers=auth)
        assert too_big.status_code == 422
        assert client.get(f"/api/cases/{2**31 - 1}", headers=auth).status_code == 404
        refusal = client.post(f"/api/cases/{case_id}/notes", json={"text": " "}, headers=auth)
        assert refusal.status_code == 422  # a service's refusal reads like FastAPI's own 422
        assert refusal.json()["detail"][0] == {
            "loc": ["body"],
            "msg": "a note needs text",
            "type": "value_error",
        }
