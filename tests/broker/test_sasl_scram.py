"""The SCRAM server state machine against the RFC test vectors, PLAIN, the per-connection SASL session,
the credentials file, and fuzzing of the exchange: only ``SaslAuthenticationError`` escapes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riel.broker.sasl.plain import verify_plain
from riel.broker.sasl.scram import (
    SaslAuthenticationError,
    ScramCredential,
    ScramMechanism,
    ScramServer,
    credential_from_salted_password,
    decode_saslname,
    new_credential,
    password_matches,
    salted_password,
)
from riel.broker.sasl.session import SaslSession, store_lookup
from riel.errors import ErrorCode
from riel.storage.credentials import CredentialsFileError, CredentialStore, StoredCredential

SHA256 = ScramMechanism.SCRAM_SHA_256
SHA512 = ScramMechanism.SCRAM_SHA_512


def rfc_server(mechanism: ScramMechanism, salt_b64: str, client_nonce: str, full_nonce: str) -> ScramServer:
    credential = new_credential(mechanism, "pencil", 4096, base64.b64decode(salt_b64))
    users = {"user": credential}
    return ScramServer(
        mechanism,
        lambda user, m: users.get(user) if m is mechanism else None,
        nonce=lambda: full_nonce.removeprefix(client_nonce),
    )


def test_rfc7677_sha256_vector() -> None:
    server = rfc_server(
        SHA256,
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        "rOprNGfwEbeRWgbNEkqO",
        "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    )
    first = server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert first == b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = server.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.complete and server.username == "user"


def test_rfc5802_sha1_vector() -> None:
    server = rfc_server(
        ScramMechanism.SCRAM_SHA_1,
        "QSXCR+Q6sek8bf92",
        "fyko+d2lbbFgONRv9qkxdawL",
        "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
    )
    assert server.step(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL") == (
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    )
    final = server.step(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
    assert final == b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="


def client_exchange(server: ScramServer, mechanism: ScramMechanism, user: str, password: str) -> bytes:
    """A minimal SCRAM client (RFC 5802 section 3) driving ``server``; returns the server-final."""
    bare = f"n={user},r=clientnonce123"
    server_first = server.step(f"n,,{bare}".encode()).decode()
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    salted = salted_password(mechanism, password, base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", mechanism.hash_name).digest()
    stored_key = hashlib.new(mechanism.hash_name, client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, mechanism.hash_name).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return server.step(f"{without_proof},p={base64.b64encode(proof).decode()}".encode())


@pytest.mark.parametrize("mechanism", [SHA256, SHA512])
def test_round_trip_and_wrong_password(mechanism: ScramMechanism) -> None:
    users = {"alice": new_credential(mechanism, "s3cret", 4096)}

    def lookup(user: str, m: ScramMechanism) -> ScramCredential | None:
        return users.get(user)

    ok = ScramServer(mechanism, lookup)
    assert client_exchange(ok, mechanism, "alice", "s3cret").startswith(b"v=")
    assert ok.username == "alice"
    with pytest.raises(SaslAuthenticationError, match="invalid credentials"):
        client_exchange(ScramServer(mechanism, lookup), mechanism, "alice", "wrong")
    # An unknown user gets a plausible challenge and fails only at the proof, like a wrong password.
    with pytest.raises(SaslAuthenticationError, match="invalid credentials"):
        client_exchange(ScramServer(mechanism, lookup), mechanism, "mallory", "s3cret")


def test_protocol_violations() -> None:
    lookup = lambda user, m: None  # noqa: E731
    for bad in [b"", b"p=tls-unique,,n=u,r=x", b"n,,r=x,n=u", b"x,,n=u,r=x", b"n,,n=u", b"n,,n=a=3Fb,r=x"]:
        with pytest.raises(SaslAuthenticationError):
            ScramServer(SHA256, lookup).step(bad)
    server = ScramServer(SHA256, lookup)
    server.step(b"n,,n=u,r=abc")
    with pytest.raises(SaslAuthenticationError, match="nonce"):
        server.step(b"c=biws,r=abc-other,p=AAAA")
    with pytest.raises(SaslAuthenticationError):
        server.step(b"n,,n=u,r=abc")  # the exchange is over after a failure


def test_saslname_escapes() -> None:
    assert decode_saslname("a=2Cb=3Dc") == "a,b=c"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=80) | st.text(max_size=60).map(str.encode), min_size=1, max_size=3))
def test_fuzzed_exchange_raises_only_authentication_errors(messages: list[bytes]) -> None:
    users = {"u": new_credential(SHA256, "p", 4096, salt=b"salt")}
    server = ScramServer(SHA256, lambda user, m: users.get(user))
    for message in [b"n,,n=u,r=abc", *messages]:
        try:
            server.step(message)
        except SaslAuthenticationError:
            return


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=64))
def test_fuzzed_plain_raises_only_authentication_errors(message: bytes) -> None:
    with contextlib.suppress(SaslAuthenticationError):
        verify_plain(message, lambda user, m: None)


def test_plain_checks_the_scram_credential() -> None:
    users = {("bob", SHA512): new_credential(SHA512, "hunter2", 4096)}

    def lookup(user: str, m: ScramMechanism) -> ScramCredential | None:
        return users.get((user, m))

    assert verify_plain(b"\0bob\0hunter2", lookup) == "bob"
    assert verify_plain(b"bob\0bob\0hunter2", lookup) == "bob"
    for bad in [b"\0bob\0hunter3", b"\0eve\0hunter2", b"bob\0hunter2", b"other\0bob\0hunter2", b"\0bob\0"]:
        with pytest.raises(SaslAuthenticationError):
            verify_plain(bad, lookup)


def test_credentials_derive_like_the_rfc() -> None:
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = credential_from_salted_password(
        SHA256, salted_password(SHA256, "pencil", salt, 4096), salt, 4096
    )
    assert password_matches(credential, "pencil") and not password_matches(credential, "pencil ")


# ---------------------------------------------------------------------------------------- the session


def test_session_gates_until_authenticated(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    c = new_credential(SHA256, "pw", 4096)
    store.upsert(
        "carol", StoredCredential(SHA256.mechanism_name, c.salt, c.iterations, c.stored_key, c.server_key)
    )
    session = SaslSession(store_lookup(store))
    assert session.admits(18) and not session.admits(3)
    assert session.handshake(1, "GSSAPI")["error_code"] == ErrorCode.UNSUPPORTED_SASL_MECHANISM
    assert session.failed

    session = SaslSession(store_lookup(store))
    assert session.handshake(1, "PLAIN")["error_code"] == ErrorCode.NONE
    assert not session.admits(3)
    response = asyncio.run(session.authenticate(b"\0carol\0pw"))
    assert response["error_code"] == ErrorCode.NONE
    assert session.authenticated and session.principal == "User:carol" and session.admits(3)

    session = SaslSession(store_lookup(store))
    session.handshake(1, "PLAIN")
    response = asyncio.run(session.authenticate(b"\0carol\0nope"))
    assert response["error_code"] == ErrorCode.SASL_AUTHENTICATION_FAILED and response["error_message"]
    assert session.failed

    session = SaslSession(store_lookup(store))
    assert asyncio.run(session.authenticate(b"\0carol\0pw"))["error_code"] == ErrorCode.ILLEGAL_SASL_STATE


def test_session_v0_raw_tokens(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    c = new_credential(SHA512, "pw", 4096)
    store.upsert(
        "dan", StoredCredential(SHA512.mechanism_name, c.salt, c.iterations, c.stored_key, c.server_key)
    )
    session = SaslSession(store_lookup(store))
    session.handshake(0, "PLAIN")
    assert session.raw_tokens
    assert asyncio.run(session.raw_token(b"\0dan\0pw")) == b""
    assert session.principal == "User:dan"


# ------------------------------------------------------------------------------------ the credentials file


def test_store_round_trips_atomically_and_privately(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    password = "correct-horse-battery-staple"  # long enough never to turn up in random base64
    c = new_credential(SHA256, password, 4096)
    record = StoredCredential(SHA256.mechanism_name, c.salt, c.iterations, c.stored_key, c.server_key)
    store.upsert("erin", record)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert password.encode() not in store.path.read_bytes()  # no clear text (trivially)
    other = CredentialStore(tmp_path)  # another process, e.g. `riel user add` while a server runs
    assert other.get("erin", SHA256.mechanism_name) == record
    assert other.delete("erin") and not other.delete("erin")
    assert store.get("erin", SHA256.mechanism_name) is None  # the first one noticed the change
    store.path.write_text("{not json")
    with pytest.raises(CredentialsFileError):
        store.users()
