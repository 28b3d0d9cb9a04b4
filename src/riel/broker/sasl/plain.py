"""The server side of SASL PLAIN (RFC 4616): one message, ``authzid NUL authcid NUL passwd``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from riel.broker.sasl.scram import (
    KAFKA_MECHANISMS,
    SaslAuthenticationError,
    ScramCredential,
    ScramMechanism,
    new_credential,
    password_matches,
)

MAX_MESSAGE_BYTES: Final = 8192

# Checked when the user is unknown, so that a wrong user name costs as much time as a wrong password.
_STAND_IN: Final = new_credential(ScramMechanism.SCRAM_SHA_512, "", salt=b"\0" * 32)


def parse_plain(message: bytes) -> tuple[str, str, str]:
    """(authzid, user, password). Raises ``SaslAuthenticationError`` on anything malformed."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise SaslAuthenticationError("PLAIN message too long")
    parts = message.split(b"\0")
    if len(parts) != 3:
        raise SaslAuthenticationError("malformed PLAIN message: expected authzid NUL user NUL password")
    try:
        authzid, user, password = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError:
        raise SaslAuthenticationError("PLAIN message is not UTF-8") from None
    if not user or not password:
        raise SaslAuthenticationError("PLAIN user name and password must not be empty")
    if authzid and authzid != user:
        raise SaslAuthenticationError("authorization id must match the user name")
    return authzid, user, password


def verify_plain(message: bytes, lookup: Callable[[str, ScramMechanism], ScramCredential | None]) -> str:
    """The authenticated user name, checked against the user's strongest SCRAM credential."""
    _, user, password = parse_plain(message)
    credential = None
    for mechanism in reversed(KAFKA_MECHANISMS):  # SCRAM-SHA-512 first
        credential = lookup(user, mechanism)
        if credential is not None:
            break
    ok = password_matches(credential or _STAND_IN, password)
    if credential is None or not ok:
        raise SaslAuthenticationError("Authentication failed: invalid credentials")
    return user
