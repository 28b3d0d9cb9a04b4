"""One connection's SASL exchange on a SASL listener: SaslHandshake, then tokens, then a principal.

The server asks ``admits(api_key)`` for every request before authentication; only ApiVersions,
SaslHandshake and SaslAuthenticate pass (anything else: the server closes the connection, as Kafka
does). After SaslHandshake v1 the tokens come in SaslAuthenticate requests (``authenticate``); after
v0 they come as bare length-prefixed frames (``raw_token``), as Kafka < 1.0 clients send them. Any
failure leaves the session ``failed``: the server sends the answer and closes the connection.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Final

from riel.broker.sasl.plain import verify_plain
from riel.broker.sasl.scram import (
    CredentialLookup,
    SaslAuthenticationError,
    ScramCredential,
    ScramMechanism,
    ScramServer,
)
from riel.errors import ErrorCode
from riel.protocol.schema import Message
from riel.storage.credentials import CredentialsFileError, CredentialStore

log = logging.getLogger(__name__)

SUPPORTED_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
API_VERSIONS_KEY: Final = 18
SASL_HANDSHAKE_KEY: Final = 17
SASL_AUTHENTICATE_KEY: Final = 36
ANONYMOUS: Final = "User:ANONYMOUS"


class _State(enum.Enum):
    HANDSHAKE = "awaiting SaslHandshake"
    TOKENS = "awaiting SASL tokens"
    AUTHENTICATED = "authenticated"
    FAILED = "failed"


def store_lookup(store: CredentialStore) -> CredentialLookup:
    """Credentials from the data directory's store (re-read when the file changes)."""

    def lookup(user: str, mechanism: ScramMechanism) -> ScramCredential | None:
        try:
            stored = store.get(user, mechanism.mechanism_name)
        except CredentialsFileError:
            log.exception("cannot read SASL credentials; refusing the login of %r", user)
            return None
        if stored is None:
            return None
        return ScramCredential(
            mechanism, stored.salt, stored.iterations, stored.stored_key, stored.server_key
        )

    return lookup


class SaslSession:
    def __init__(self, lookup: CredentialLookup, mechanisms: tuple[str, ...] = SUPPORTED_MECHANISMS) -> None:
        self._lookup = lookup
        self.mechanisms = mechanisms
        self._state = _State.HANDSHAKE
        self._mechanism = ""
        self._scram: ScramServer | None = None
        self.raw_tokens = False  # SaslHandshake v0: tokens follow as bare frames
        self.principal: str | None = None
        self.failure: str | None = None

    @property
    def authenticated(self) -> bool:
        return self._state is _State.AUTHENTICATED

    @property
    def failed(self) -> bool:
        return self._state is _State.FAILED

    def admits(self, api_key: int) -> bool:
        """Whether a request may be routed as usual (the SASL APIs go to ``handshake``/``authenticate``)."""
        return self.authenticated or api_key == API_VERSIONS_KEY

    def refusal(self, api_name: str) -> str:
        return f"{api_name} request before SASL authentication ({self._state.value})"

    def _fail(self, reason: str) -> None:
        self._state = _State.FAILED
        self.failure = reason

    # --- SaslHandshake --------------------------------------------------------------------------
    def handshake(self, version: int, mechanism: str) -> Message:
        mechanisms = list(self.mechanisms)
        if self._state is not _State.HANDSHAKE:
            self._fail(f"unexpected SaslHandshake ({self._state.value})")
            return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": mechanisms}
        if mechanism not in self.mechanisms:
            self._fail(f"unsupported SASL mechanism {mechanism!r}")
            return {"error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "mechanisms": mechanisms}
        self._mechanism = mechanism
        scram = ScramMechanism.by_name(mechanism)
        self._scram = None if scram is None else ScramServer(scram, self._lookup)
        self.raw_tokens = version == 0
        self._state = _State.TOKENS
        return {"error_code": ErrorCode.NONE, "mechanisms": mechanisms}

    # --- tokens ---------------------------------------------------------------------------------
    async def _step(self, token: bytes) -> bytes:
        """The server's token for the client's; raises ``SaslAuthenticationError``."""
        if self._scram is not None:
            reply = self._scram.step(token)
            if self._scram.complete:
                assert self._scram.username is not None
                self._authenticated(self._scram.username)
            return reply
        # PLAIN: one PBKDF2 derivation (thousands of HMACs), off the event loop.
        user = await asyncio.to_thread(verify_plain, token, self._lookup)
        self._authenticated(user)
        return b""

    def _authenticated(self, user: str) -> None:
        self._state = _State.AUTHENTICATED
        self.principal = f"User:{user}"
        self.raw_tokens = False
        log.info("authenticated %s with %s", self.principal, self._mechanism)

    async def authenticate(self, token: bytes) -> Message:
        """The SaslAuthenticate response body for one token (v1 handshake)."""
        if self._state is not _State.TOKENS or self.raw_tokens:
            reason = f"unexpected SaslAuthenticate ({self._state.value})"
            self._fail(reason)
            return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "error_message": reason, "auth_bytes": b""}
        try:
            reply = await self._step(token)
        except SaslAuthenticationError as exc:
            self._fail(str(exc))
            return {
                "error_code": ErrorCode.SASL_AUTHENTICATION_FAILED,
                "error_message": str(exc),
                "auth_bytes": b"",
            }
        return {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "auth_bytes": reply,
            "session_lifetime_ms": 0,
        }

    async def raw_token(self, token: bytes) -> bytes | None:
        """The server's raw token for one bare client token (v0 handshake); None: failed, close."""
        try:
            return await self._step(token)
        except SaslAuthenticationError as exc:
            self._fail(str(exc))
            return None
