"""TLS end to end: a real ``riel serve`` with an SSL listener that requires client certificates (mutual
TLS) and a SASL_SSL listener, a test CA made with openssl, and the authorizer on.

kafka-python, aiokafka, confluent-kafka and Debian's kcat log in with a client certificate; the principal
is the certificate's subject as Kafka's DEFAULT ``ssl.principal.mapping.rules`` name it
(``User:CN=alice,OU=Payments,O=Acme``), so ACLs written for that name let alice in and keep bob out.
Clients without a certificate, or with one our CA did not sign, are refused in the handshake. Over
SASL_SSL all four clients log in with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import RielServer, free_port
from e2e.auth_clients import (
    MECHANISMS,
    PASSWORD,
    TIMEOUT_S,
    USER,
    aiokafka_round_trip,
    ck_config,
    ck_login_error,
    ck_round_trip,
    kcat_round_trip,
    kcat_sasl_settings,
    kp_config,
    kp_round_trip,
    riel_cli,
    topic_name,
)

ALICE_SUBJECT, ALICE = "/O=Acme/OU=Payments/CN=alice", "User:CN=alice,OU=Payments,O=Acme"
BOB_SUBJECT = "/O=Acme/CN=bob"
PREFIX = "mtls-"  # alice may create, write, read and describe the topics named so, and the groups "g-mtls-"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TlsServer:
    ca: Path
    alice: Pair
    bob: Pair
    rogue: Pair  # self-signed: not from our CA
    ssl_bootstrap: str
    sasl_ssl_bootstrap: str
    plain_bootstrap: str


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None
    subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)


def _self_signed(base: Path, name: str, subject: str) -> Pair:
    pair = Pair(base / f"{name}.pem", base / f"{name}.key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pair.key),
             "-out", str(pair.cert), "-days", "1", "-subj", subject)  # fmt: skip
    return pair


def _signed(base: Path, ca: Pair, name: str, subject: str, extensions: str = "") -> Pair:
    pair = Pair(base / f"{name}.pem", base / f"{name}.key")
    request = base / f"{name}.csr"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pair.key), "-out", str(request),
             "-subj", subject)  # fmt: skip
    extfile = base / f"{name}.ext"
    extfile.write_text(extensions + "\n")
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
             "-CAcreateserial", "-out", str(pair.cert), "-days", "1", "-extfile", str(extfile))  # fmt: skip
    return pair


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    base = tmp_path_factory.mktemp("tls")
    ca = _self_signed(base, "ca", "/CN=Riel Test CA")
    server_pair = _signed(base, ca, "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    alice = _signed(base, ca, "alice", ALICE_SUBJECT)
    bob = _signed(base, ca, "bob", BOB_SUBJECT)
    rogue = _self_signed(base, "rogue", ALICE_SUBJECT)
    data = base / "data"
    added = riel_cli("user", "add", USER, "--password", PASSWORD, "--data-dir", str(data))
    assert added.returncode == 0, added.stderr
    for resource in (["--topic", PREFIX], ["--group", f"g-{PREFIX}"]):
        granted = riel_cli("acl", "add", "--data-dir", str(data), "--principal", ALICE, "--prefixed",
                           *resource, "--operation", "READ", "--operation", "WRITE",
                           "--operation", "CREATE", "--operation", "DESCRIBE")  # fmt: skip
        assert granted.returncode == 0, granted.stderr
    port, ssl_port, sasl_ssl_port = free_port(), free_port(), free_port()
    server = RielServer(
        data,
        base / "riel.log",
        port=port,
        extra_args=(
            "--listener", f"PLAINTEXT://127.0.0.1:{port}",
            "--listener", f"SSL://127.0.0.1:{ssl_port}",
            "--listener", f"SASL_SSL://127.0.0.1:{sasl_ssl_port}",
            "--ssl-certfile", str(server_pair.cert), "--ssl-keyfile", str(server_pair.key),
            "--ssl-cafile", str(ca.cert), "--ssl-client-auth", "required",
            "--authorizer", "--super-user", "User:ANONYMOUS", "--super-user", f"User:{USER}",
        ),
    )  # fmt: skip
    server.start()
    try:
        yield TlsServer(
            ca.cert,
            alice,
            bob,
            rogue,
            f"127.0.0.1:{ssl_port}",
            f"127.0.0.1:{sasl_ssl_port}",
            server.bootstrap,
        )
    finally:
        server.close()


def ck_mtls(tls: TlsServer, pair: Pair | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": tls.ssl_bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(tls.ca),
        "log_level": 2,
    }
    if pair is not None:
        config |= {"ssl.certificate.location": str(pair.cert), "ssl.key.location": str(pair.key)}
    return config


def kp_mtls(tls: TlsServer, pair: Pair) -> dict[str, Any]:
    return {
        "bootstrap_servers": tls.ssl_bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": str(tls.ca),
        "ssl_certfile": str(pair.cert),
        "ssl_keyfile": str(pair.key),
    }


# ------------------------------------------------------------------------------------- mutual TLS


def test_confluent_kafka_with_a_client_certificate(tls: TlsServer) -> None:
    values = ck_round_trip(ck_mtls(tls, tls.alice), topic_name(PREFIX + "ck"))
    assert values == [f"ck-{i}".encode() for i in range(5)]


def test_kafka_python_with_a_client_certificate(tls: TlsServer) -> None:
    values = kp_round_trip(kp_mtls(tls, tls.alice), topic_name(PREFIX + "kp"))
    assert values == [f"kp-{i}".encode() for i in range(5)]


def test_aiokafka_with_a_client_certificate(tls: TlsServer) -> None:
    values = aiokafka_round_trip(kp_mtls(tls, tls.alice), topic_name(PREFIX + "aio"))
    assert values == [f"aio-{i}".encode() for i in range(5)]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_with_a_client_certificate(tls: TlsServer) -> None:
    settings = {
        "security.protocol": "SSL",
        "ssl.ca.location": str(tls.ca),
        "ssl.certificate.location": str(tls.alice.cert),
        "ssl.key.location": str(tls.alice.key),
    }
    assert kcat_round_trip(tls.ssl_bootstrap, settings, topic_name(PREFIX + "kcat")) == ["one", "two"]


def _produce_error(config: dict[str, Any], topic: str) -> str:
    """The error confluent-kafka's producer reports for one message (empty if it was written)."""
    from confluent_kafka import Producer

    errors: list[str] = []

    def report(error: Any, _message: Any) -> None:
        errors.append(error.name() if error is not None else "")

    producer = Producer({**config, "message.timeout.ms": int(TIMEOUT_S * 1000)})
    producer.produce(topic, b"x", on_delivery=report)
    producer.flush(TIMEOUT_S)
    assert len(errors) == 1
    return errors[0]


def test_the_certificate_subject_is_the_principal_acls_name(tls: TlsServer) -> None:
    """alice's ACLs are written for her certificate's subject; they cover her prefix only, and bob,
    whose certificate the same CA signed, has no ACL and is refused."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": tls.plain_bootstrap})  # User:ANONYMOUS is a super user
    outside, inside = topic_name("elsewhere"), topic_name(PREFIX + "acl")
    for future in admin.create_topics([NewTopic(outside, 1, 1), NewTopic(inside, 1, 1)]).values():
        future.result(TIMEOUT_S)
    assert _produce_error(ck_mtls(tls, tls.alice), inside) == ""
    assert _produce_error(ck_mtls(tls, tls.alice), outside) == "TOPIC_AUTHORIZATION_FAILED"
    assert _produce_error(ck_mtls(tls, tls.bob), inside) == "TOPIC_AUTHORIZATION_FAILED"


def _can_list_topics(config: dict[str, Any]) -> bool:
    """Whether confluent-kafka gets the cluster's metadata within five seconds."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(config)
    try:
        producer.list_topics(timeout=5)
    except KafkaException:
        return False
    return True


def test_a_client_without_a_certificate_is_refused(tls: TlsServer) -> None:
    assert _can_list_topics(ck_mtls(tls, tls.alice))
    assert not _can_list_topics(ck_mtls(tls, None))
    # The same at the socket level: the broker ends the handshake, nothing Kafka is ever answered.
    context = ssl.create_default_context(cafile=str(tls.ca))
    host, port = tls.ssl_bootstrap.split(":")
    with (
        socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
        context.wrap_socket(raw, server_hostname=host) as sock,
    ):
        # TLS 1.3: the client finishes first; the broker's alert arrives with the first read.
        sock.sendall(b"\0\0\0\x0c\0\x12\0\0\0\0\0\x01\0\x02ab")  # ApiVersions v0
        assert sock.recv(4) == b"", "the broker answered a client without a certificate"
        raise ConnectionResetError("closed without an answer")


def test_a_certificate_from_another_ca_is_refused(tls: TlsServer) -> None:
    assert not _can_list_topics(ck_mtls(tls, tls.rogue))


# ---------------------------------------------------------------------------------------- SASL_SSL


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_over_sasl_ssl(tls: TlsServer, mechanism: str) -> None:
    config = ck_config(
        tls.sasl_ssl_bootstrap, mechanism, protocol="SASL_SSL", **{"ssl.ca.location": str(tls.ca)}
    )
    assert ck_round_trip(config, topic_name("ck-sasl-ssl")) == [f"ck-{i}".encode() for i in range(5)]
    wrong = {**config, "sasl.password": "wrong"}
    assert "invalid credentials" in ck_login_error(wrong)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_over_sasl_ssl(tls: TlsServer, mechanism: str) -> None:
    config = kp_config(tls.sasl_ssl_bootstrap, mechanism, protocol="SASL_SSL", ssl_cafile=str(tls.ca))
    assert kp_round_trip(config, topic_name("kp-sasl-ssl")) == [f"kp-{i}".encode() for i in range(5)]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_aiokafka_over_sasl_ssl(tls: TlsServer, mechanism: str) -> None:
    config = kp_config(tls.sasl_ssl_bootstrap, mechanism, protocol="SASL_SSL", ssl_cafile=str(tls.ca))
    assert aiokafka_round_trip(config, topic_name("aio-sasl-ssl")) == [f"aio-{i}".encode() for i in range(5)]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kcat_over_sasl_ssl(tls: TlsServer, mechanism: str) -> None:
    settings = kcat_sasl_settings(mechanism, "SASL_SSL") | {"ssl.ca.location": str(tls.ca)}
    assert kcat_round_trip(tls.sasl_ssl_bootstrap, settings, topic_name("kcat-sasl-ssl")) == ["one", "two"]


def test_riel_serve_refuses_client_auth_without_a_ca(tmp_path: Path) -> None:
    result = riel_cli("serve", "--data-dir", str(tmp_path), "--ssl-client-auth", "required", "--no-http")
    assert result.returncode == 2
    assert "--ssl-cafile" in result.stderr
