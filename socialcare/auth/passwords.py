"""Password hashing with Argon2id (argon2-cffi's recommended parameters) and generated secrets."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
# Verified against when the handle is unknown, so a wrong handle costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An Argon2id hash of password; ValueError when it is too short to be worth hashing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether password matches the stored hash (always False, in constant effort, if none)."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether the stored hash used weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(stored)


def generate_password() -> str:
    """A random password for a new account, shown once."""
    return secrets.token_urlsafe(15)


def new_secret() -> str:
    """A random secret for a cookie or a token."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored for a secret: its SHA-256 (secrets are random, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
