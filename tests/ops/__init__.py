"""Operations: readiness, metrics and structured logs."""
