"""The server side of SCRAM (RFC 5802, RFC 7677) as a small pure state machine, and credential math.

What a broker stores per user and mechanism is a ``ScramCredential``: salt, iteration count,
StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey = HMAC(SaltedPassword, "Server Key").
The password and SaltedPassword are never kept: StoredKey lets the server check a client's proof, and
ServerKey lets it prove that it knew the credential too. PLAIN logins are checked against the same
credential by deriving StoredKey from the offered password.

``ScramServer`` takes the client-first message and answers the server-first, then takes the
client-final and answers the server-final. Any failure raises ``SaslAuthenticationError`` with a message
fit for the client; an unknown user fails exactly like a wrong password, after the same exchange.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MIN_ITERATIONS: Final = 4096  # RFC 7677 and Kafka's minimum
MAX_ITERATIONS: Final = 16384  # Kafka's maximum: clients derive SaltedPassword on every login
DEFAULT_ITERATIONS: Final = 8192
SALT_BYTES: Final = 32
NONCE_BYTES: Final = 24
MAX_MESSAGE_BYTES: Final = 8192  # a SCRAM message is a few hundred bytes; refuse silly ones early


class SaslAuthenticationError(Exception):
    """Authentication failed; the message is safe to send to the client."""


class ScramMechanism(enum.Enum):
    """Mechanism name, hash, and the id AlterUserScramCredentials / DescribeUserScramCredentials use."""

    SCRAM_SHA_1 = ("SCRAM-SHA-1", "sha1", 0)  # RFC 5802's examples only; never offered to clients
    SCRAM_SHA_256 = ("SCRAM-SHA-256", "sha256", 1)
    SCRAM_SHA_512 = ("SCRAM-SHA-512", "sha512", 2)

    def __init__(self, mechanism_name: str, hash_name: str, kafka_id: int) -> None:
        self.mechanism_name = mechanism_name
        self.hash_name = hash_name
        self.kafka_id = kafka_id

    @property
    def digest_size(self) -> int:
        return hashlib.new(self.hash_name).digest_size

    @classmethod
    def by_name(cls, name: str) -> ScramMechanism | None:
        for mechanism in KAFKA_MECHANISMS:
            if mechanism.mechanism_name == name:
                return mechanism
        return None

    @classmethod
    def by_kafka_id(cls, kafka_id: int) -> ScramMechanism | None:
        for mechanism in KAFKA_MECHANISMS:
            if mechanism.kafka_id == kafka_id:
                return mechanism
        return None


KAFKA_MECHANISMS: Final = (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)


@dataclass(frozen=True)
class ScramCredential:
    mechanism: ScramMechanism
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def salted_password(mechanism: ScramMechanism, password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(Normalize(password), salt, i). SASLprep is not applied: Kafka's clients do not apply it
    either, so non-ASCII passwords work as long as both sides send the same UTF-8."""
    return hashlib.pbkdf2_hmac(mechanism.hash_name, password.encode(), salt, iterations)


def credential_from_salted_password(
    mechanism: ScramMechanism, salted: bytes, salt: bytes, iterations: int
) -> ScramCredential:
    client_key = _hmac(mechanism, salted, b"Client Key")
    return ScramCredential(
        mechanism=mechanism,
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.new(mechanism.hash_name, client_key).digest(),
        server_key=_hmac(mechanism, salted, b"Server Key"),
    )


def new_credential(
    mechanism: ScramMechanism, password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return credential_from_salted_password(
        mechanism, salted_password(mechanism, password, salt, iterations), salt, iterations
    )


def password_matches(credential: ScramCredential, password: str) -> bool:
    """Whether ``password`` derives ``credential`` (used for PLAIN). Constant-time comparison."""
    derived = credential_from_salted_password(
        credential.mechanism,
        salted_password(credential.mechanism, password, credential.salt, credential.iterations),
        credential.salt,
        credential.iterations,
    )
    return hmac.compare_digest(derived.stored_key, credential.stored_key)


def _hmac(mechanism: ScramMechanism, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, mechanism.hash_name).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def decode_saslname(name: str) -> str:
    """RFC 5802 saslname: "=2C" is ",", "=3D" is "="; any other "=" is an error."""
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == ",":
            raise SaslAuthenticationError("invalid SCRAM user name")
        if ch == "=":
            escape = name[i : i + 3]
            if escape == "=2C":
                out.append(",")
            elif escape == "=3D":
                out.append("=")
            else:
                raise SaslAuthenticationError("invalid SCRAM user name encoding")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _attributes(message: str, what: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=" or not part[0].isalpha():
            raise SaslAuthenticationError(f"malformed SCRAM {what} message")
        pairs.append((part[0], part[2:]))
    return pairs


CredentialLookup = Callable[[str, ScramMechanism], ScramCredential | None]


class _State(enum.Enum):
    CLIENT_FIRST = "client-first"
    CLIENT_FINAL = "client-final"
    DONE = "done"
    FAILED = "failed"


class ScramServer:
    """One SCRAM exchange. ``step(client_message) -> server_message`` twice; then ``username`` is set.

    ``nonce`` supplies the server nonce (tests pass RFC vectors' nonce); ``lookup`` finds a user's
    credential. Unknown users get a stand-in credential derived from a per-process secret so that the
    exchange looks the same until the proof is checked.
    """

    def __init__(
        self,
        mechanism: ScramMechanism,
        lookup: CredentialLookup,
        nonce: Callable[[], str] | None = None,
    ) -> None:
        self.mechanism = mechanism
        self._lookup = lookup
        self._nonce = nonce or (lambda: secrets.token_urlsafe(NONCE_BYTES))
        self._state = _State.CLIENT_FIRST
        self._credential: ScramCredential | None = None
        self._known_user = False
        self._user = ""
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._client_nonce = ""
        self._nonce_value = ""
        self.username: str | None = None  # set once authenticated

    @property
    def complete(self) -> bool:
        return self._state is _State.DONE

    def step(self, client_message: bytes) -> bytes:
        if len(client_message) > MAX_MESSAGE_BYTES:
            self._state = _State.FAILED
            raise SaslAuthenticationError("SCRAM message too long")
        try:
            text = client_message.decode("utf-8")
        except UnicodeDecodeError:
            self._state = _State.FAILED
            raise SaslAuthenticationError("SCRAM message is not UTF-8") from None
        try:
            if self._state is _State.CLIENT_FIRST:
                return self._client_first(text).encode()
            if self._state is _State.CLIENT_FINAL:
                return self._client_final(text).encode()
        except SaslAuthenticationError:
            self._state = _State.FAILED
            raise
        self._state = _State.FAILED
        raise SaslAuthenticationError("unexpected SCRAM message after the exchange ended")

    def _client_first(self, text: str) -> str:
        # gs2-header: "n,," or "y,," (no channel binding), optionally "n,a=authzid,".
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise SaslAuthenticationError("malformed SCRAM client-first message")
        cbind, authzid, bare = parts
        if cbind.startswith("p="):
            raise SaslAuthenticationError("SCRAM channel binding is not supported")
        if cbind not in ("n", "y"):
            raise SaslAuthenticationError("malformed SCRAM gs2 header")
        if authzid and not authzid.startswith("a="):
            raise SaslAuthenticationError("malformed SCRAM gs2 header")
        attrs = _attributes(bare, "client-first")
        if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r" or not attrs[1][1]:
            raise SaslAuthenticationError("malformed SCRAM client-first message")
        if any(key == "m" for key, _ in attrs):
            raise SaslAuthenticationError("SCRAM mandatory extensions are not supported")
        self._user = decode_saslname(attrs[0][1])
        if authzid and decode_saslname(authzid[2:]) != self._user:
            raise SaslAuthenticationError("authorization id must match the user name")
        client_nonce = attrs[1][1]
        credential = self._lookup(self._user, self.mechanism) if self._user else None
        self._known_user = credential is not None
        self._credential = credential or self._stand_in(self._user)
        self._gs2_header = f"{cbind},{authzid},"
        self._client_first_bare = bare
        self._client_nonce = client_nonce
        self._nonce_value = client_nonce + self._nonce()
        salt = base64.b64encode(self._credential.salt).decode()
        self._server_first = f"r={self._nonce_value},s={salt},i={self._credential.iterations}"
        self._state = _State.CLIENT_FINAL
        return self._server_first

    def _client_final(self, text: str) -> str:
        attrs = _attributes(text, "client-final")
        if len(attrs) < 3 or attrs[0][0] != "c" or attrs[1][0] != "r" or attrs[-1][0] != "p":
            raise SaslAuthenticationError("malformed SCRAM client-final message")
        try:
            channel = base64.b64decode(attrs[0][1], validate=True)
            proof = base64.b64decode(attrs[-1][1], validate=True)
        except (binascii.Error, ValueError):
            raise SaslAuthenticationError("malformed base64 in SCRAM client-final message") from None
        if not hmac.compare_digest(channel, self._gs2_header.encode()):
            raise SaslAuthenticationError("SCRAM channel binding does not match")
        # librdkafka < 2.6.1 (Debian's kcat among them) sends client nonce + the whole nonce
        # (confluentinc/librdkafka#4895); Kafka 3.8.1-3.9 accepted it. We accept exactly that form too:
        # the server nonce is still there and covered by the proof, so a replay still fails.
        nonce = attrs[1][1].encode()
        buggy = (self._client_nonce + self._nonce_value).encode()
        if not (hmac.compare_digest(nonce, self._nonce_value.encode()) or hmac.compare_digest(nonce, buggy)):
            raise SaslAuthenticationError("SCRAM nonce does not match")
        credential = self._credential
        assert credential is not None
        without_proof = text[: text.rindex(",p=")]
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        client_signature = _hmac(self.mechanism, credential.stored_key, auth_message)
        if len(proof) != len(client_signature):
            raise SaslAuthenticationError("Authentication failed: invalid credentials")
        client_key = _xor(proof, client_signature)
        stored_key = hashlib.new(self.mechanism.hash_name, client_key).digest()
        if not hmac.compare_digest(stored_key, credential.stored_key) or not self._known_user:
            raise SaslAuthenticationError("Authentication failed: invalid credentials")
        server_signature = _hmac(self.mechanism, credential.server_key, auth_message)
        self.username = self._user
        self._state = _State.DONE
        return "v=" + base64.b64encode(server_signature).decode()

    def _stand_in(self, user: str) -> ScramCredential:
        # Deterministic per user within this process, so repeated probes see a stable salt.
        salt = hmac.new(_STAND_IN_SECRET, user.encode(), "sha256").digest()
        size = self.mechanism.digest_size
        return ScramCredential(
            self.mechanism, salt, DEFAULT_ITERATIONS, secrets.token_bytes(size), secrets.token_bytes(size)
        )


_STAND_IN_SECRET: Final = secrets.token_bytes(32)
