"""The error of the waits predicted in public acknowledgements against the actual waits."""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from socialcare.cases.models import Case
from socialcare.db import SecondsBetween, at
from socialcare.metrics.digest_model import AckAccuracy
from socialcare.metrics.figures import Scope, in_scope


def ack_accuracy(*, session: Session, scope: Scope) -> AckAccuracy | None:
    """Predicted against actual wait (prediction to first response) for the cases in scope that
    were told a wait; None when none was."""
    answered = and_(Case.first_response_at.is_not(None), Case.first_response_at <= at(scope.now))
    actual = SecondsBetween(Case.first_response_at, Case.ack_predicted_at)
    error = sql_case((answered, Case.ack_predicted_seconds - actual), else_=None)
    stmt = select(
        func.count(),
        func.count(error),
        func.avg(func.abs(error)),
        func.avg(error),
    ).where(Case.ack_predicted_at.is_not(None))
    stmt = in_scope(stmt, scope)
    told, answered_n, abs_error, signed = session.execute(stmt).one()
    if not told:
        return None
    return AckAccuracy(
        told=int(told),
        answered=int(answered_n),
        mean_abs_error_s=None if abs_error is None else float(abs_error),
        mean_error_s=None if signed is None else float(signed),
    )
