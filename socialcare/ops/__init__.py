"""Operations: readiness checks and Prometheus metrics computed from the database."""

from socialcare.ops.health import readiness
from socialcare.ops.metrics import build_registry, render

__all__ = ["build_registry", "readiness", "render"]
