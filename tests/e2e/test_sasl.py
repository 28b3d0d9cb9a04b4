"""SASL end to end: a real ``riel serve`` with a PLAINTEXT and a SASL_PLAINTEXT listener; kafka-python,
aiokafka, confluent-kafka and kcat log in with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, produce and
consume; wrong passwords and unknown users are refused and cut off; nothing but ApiVersions and the
SASL APIs is served before authentication; users are managed with ``riel user`` and the admin API."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

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
from riel.protocol.apis import API_VERSIONS, METADATA, SASL_AUTHENTICATE, SASL_HANDSHAKE
from riel.protocol.headers import decode_response, encode_request
from riel.protocol.schema import ApiSchema, Message


class SaslServer:
    def __init__(self, server: RielServer, sasl_port: int) -> None:
        self.server = server
        self.sasl_port = sasl_port
        self.plain_bootstrap = server.bootstrap
        self.sasl_bootstrap = f"127.0.0.1:{sasl_port}"
        self.data_dir = server.data_dir


@pytest.fixture(scope="module")
def sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslServer]:
    base = tmp_path_factory.mktemp("sasl")
    data = base / "data"
    added = riel_cli("user", "add", USER, "--password-stdin", "--data-dir", str(data), stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    port, sasl_port = free_port(), free_port()
    server = RielServer(
        data,
        base / "riel.log",
        port=port,
        extra_args=(
            "--listener", f"PLAINTEXT://127.0.0.1:{port}",
            "--listener", f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        ),
    )  # fmt: skip
    server.start()
    try:
        yield SaslServer(server, sasl_port)
    finally:
        server.close()


# ------------------------------------------------------------------------------------------ raw frames


class Wire:
    """A bare Kafka connection for checking exactly what the broker sends and when it hangs up."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.correlation = 0

    def send(self, api: ApiSchema, version: int, body: Message) -> None:
        self.correlation += 1
        self.sock.sendall(encode_request(api, version, self.correlation, "riel-test", body))

    def recv_frame(self) -> bytes | None:
        """The next frame's payload, or None when the broker closed the connection."""
        head = self._recv(4)
        if head is None:
            return None
        payload = self._recv(int.from_bytes(head, "big"))
        assert payload is not None, "connection closed mid-frame"
        return payload

    def call(self, api: ApiSchema, version: int, body: Message) -> Message | None:
        self.send(api, version, body)
        frame = self.recv_frame()
        if frame is None:
            return None
        correlation, response = decode_response(api, version, frame)
        assert correlation == self.correlation
        return response

    def _recv(self, n: int) -> bytes | None:
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            out += chunk
        return bytes(out)

    def closed_by_broker(self) -> bool:
        return self.recv_frame() is None

    def close(self) -> None:
        self.sock.close()


def test_metadata_advertises_the_listener_of_the_connection(sasl: SaslServer) -> None:
    plain = Wire(sasl.server.port)
    meta = plain.call(METADATA, 9, {"topics": None})
    assert meta is not None and [(b["host"], b["port"]) for b in meta["brokers"]] == [
        ("127.0.0.1", sasl.server.port)
    ]
    plain.close()
    wire = Wire(sasl.sasl_port)
    assert wire.call(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}) == {
        "error_code": 0,
        "mechanisms": MECHANISMS,
    }
    auth = wire.call(SASL_AUTHENTICATE, 2, {"auth_bytes": f"\0{USER}\0{PASSWORD}".encode()})
    assert auth is not None and auth["error_code"] == 0
    meta = wire.call(METADATA, 9, {"topics": None})
    assert meta is not None and [(b["host"], b["port"]) for b in meta["brokers"]] == [
        ("127.0.0.1", sasl.sasl_port)
    ]
    wire.close()


def test_nothing_but_api_versions_and_sasl_before_authentication(sasl: SaslServer) -> None:
    wire = Wire(sasl.sasl_port)
    versions = wire.call(API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert versions is not None and versions["error_code"] == 0
    assert {17, 36} <= {k["api_key"] for k in versions["api_keys"]}
    wire.send(METADATA, 9, {"topics": None})
    assert wire.closed_by_broker()
    wire.close()
    # The same after a handshake, before the token.
    wire = Wire(sasl.sasl_port)
    assert wire.call(SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-256"}) is not None
    wire.send(METADATA, 9, {"topics": None})
    assert wire.closed_by_broker()
    wire.close()


@pytest.mark.parametrize(
    "token",
    [f"\0{USER}\0not the password".encode(), f"\0mallory\0{PASSWORD}".encode()],
    ids=["wrong-password", "unknown-user"],
)
def test_failed_plain_login_gets_error_58_and_is_cut_off(sasl: SaslServer, token: bytes) -> None:
    wire = Wire(sasl.sasl_port)
    wire.call(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    auth = wire.call(SASL_AUTHENTICATE, 1, {"auth_bytes": token})
    assert auth is not None
    assert auth["error_code"] == 58 and "invalid credentials" in auth["error_message"]
    assert wire.closed_by_broker()
    wire.close()


def test_unsupported_mechanism_is_refused(sasl: SaslServer) -> None:
    wire = Wire(sasl.sasl_port)
    response = wire.call(SASL_HANDSHAKE, 1, {"mechanism": "GSSAPI"})
    assert response == {"error_code": 33, "mechanisms": MECHANISMS}
    assert wire.closed_by_broker()
    wire.close()


def test_handshake_v0_then_bare_tokens(sasl: SaslServer) -> None:
    """Kafka < 1.0 clients: after SaslHandshake v0 the PLAIN token travels as a bare frame."""
    wire = Wire(sasl.sasl_port)
    assert wire.call(SASL_HANDSHAKE, 0, {"mechanism": "PLAIN"}) == {"error_code": 0, "mechanisms": MECHANISMS}
    token = f"\0{USER}\0{PASSWORD}".encode()
    wire.sock.sendall(len(token).to_bytes(4, "big") + token)
    assert wire.recv_frame() == b""
    meta = wire.call(METADATA, 1, {"topics": None})
    assert meta is not None and meta["brokers"][0]["port"] == sasl.sasl_port
    wire.close()
    wire = Wire(sasl.sasl_port)
    wire.call(SASL_HANDSHAKE, 0, {"mechanism": "PLAIN"})
    token = f"\0{USER}\0nope".encode()
    wire.sock.sendall(len(token).to_bytes(4, "big") + token)
    assert wire.closed_by_broker()
    wire.close()


def test_sasl_apis_on_the_plaintext_listener_are_illegal(sasl: SaslServer) -> None:
    wire = Wire(sasl.server.port)
    response = wire.call(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    assert response is not None and response["error_code"] == 34  # ILLEGAL_SASL_STATE
    wire.close()


# ---------------------------------------------------------------------------------------- real clients


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_round_trip(sasl: SaslServer, mechanism: str) -> None:
    config = kp_config(sasl.sasl_bootstrap, mechanism)
    assert kp_round_trip(config, topic_name("kp")) == [f"kp-{i}".encode() for i in range(5)]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_aiokafka_round_trip(sasl: SaslServer, mechanism: str) -> None:
    config = kp_config(sasl.sasl_bootstrap, mechanism)
    assert aiokafka_round_trip(config, topic_name("aio")) == [f"aio-{i}".encode() for i in range(5)]


def test_aiokafka_wrong_password_raises(sasl: SaslServer, caplog: pytest.LogCaptureFixture) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    async def run() -> None:
        producer = AIOKafkaProducer(**kp_config(sasl.sasl_bootstrap, "SCRAM-SHA-256", password="wrong"))
        try:
            await asyncio.wait_for(producer.start(), TIMEOUT_S)
        finally:
            await producer.stop()

    with pytest.raises(KafkaError):  # aiokafka reports "unable to bootstrap" and logs the cause
        asyncio.run(run())
    assert "[Error 58] SaslAuthenticationFailed: Authentication failed: invalid credentials" in caplog.text


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_round_trip(sasl: SaslServer, mechanism: str) -> None:
    topic = topic_name("ck")
    config = ck_config(sasl.sasl_bootstrap, mechanism)
    assert ck_round_trip(config, topic) == [f"ck-{i}".encode() for i in range(5)]


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("who", ["wrong-password", "unknown-user"])
def test_confluent_kafka_is_refused(sasl: SaslServer, mechanism: str, who: str) -> None:
    user, password = (USER, "wrong") if who == "wrong-password" else ("mallory", PASSWORD)
    error = ck_login_error(ck_config(sasl.sasl_bootstrap, mechanism, user, password))
    assert error.startswith("_AUTHENTICATION") and "invalid credentials" in error


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kcat_round_trip(sasl: SaslServer, mechanism: str) -> None:
    settings = kcat_sasl_settings(mechanism)
    assert kcat_round_trip(sasl.sasl_bootstrap, settings, topic_name("kcat")) == ["one", "two"]


# ----------------------------------------------------------------------------------- managing users


def test_riel_user_add_and_delete_while_the_server_runs(sasl: SaslServer) -> None:
    data = str(sasl.data_dir)
    added = riel_cli(
        "user", "add", "bob", "--password", "b0b", "--mechanism", "SCRAM-SHA-256", "--data-dir", data
    )
    assert added.returncode == 0, added.stderr
    listed = riel_cli("user", "list", "--json", "--data-dir", data)
    assert '"bob"' in listed.stdout and "b0b" not in Path(data, "credentials.json").read_text()
    topic = topic_name("bob")
    bob = ck_config(sasl.sasl_bootstrap, "SCRAM-SHA-256", "bob", "b0b")
    assert ck_round_trip(bob, topic, 1) == [b"ck-0"]
    # PLAIN checks against the SCRAM-SHA-256 credential when there is no SCRAM-SHA-512 one.
    bob_plain = ck_config(sasl.sasl_bootstrap, "PLAIN", "bob", "b0b")
    assert ck_round_trip(bob_plain, topic_name("bob"), 1) == [b"ck-0"]
    deleted = riel_cli("user", "delete", "bob", "--data-dir", data)
    assert deleted.returncode == 0, deleted.stderr
    assert "invalid credentials" in ck_login_error(bob)
    again = riel_cli("user", "delete", "bob", "--data-dir", data)
    assert again.returncode == 4


def test_admin_api_manages_users(sasl: SaslServer) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": sasl.plain_bootstrap})
    upsert = UserScramCredentialUpsertion(
        "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"c4r0l", b"some-salt"
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(TIMEOUT_S)
    described = admin.describe_user_scram_credentials(["carol"])["carol"].result(TIMEOUT_S)
    assert [(i.mechanism, i.iterations) for i in described.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_512, 4096)
    ]
    carol = ck_config(sasl.sasl_bootstrap, "SCRAM-SHA-512", "carol", "c4r0l")
    assert ck_round_trip(carol, topic_name("carol"), 1) == [b"ck-0"]
    listed = riel_cli("user", "list", "--json", "--bootstrap", sasl.plain_bootstrap)
    assert listed.returncode == 0 and '"carol"' in listed.stdout, listed.stderr
    too_few = UserScramCredentialUpsertion(
        "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000), b"pw", b"salt"
    )
    with pytest.raises(Exception, match=r"(?i)iterations"):
        for future in admin.alter_user_scram_credentials([too_few]).values():
            future.result(TIMEOUT_S)
    deletion = UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)
    for future in admin.alter_user_scram_credentials([deletion]).values():
        future.result(TIMEOUT_S)
    with pytest.raises(Exception, match=r"(?i)does not exist|not.found"):
        admin.describe_user_scram_credentials(["carol"])["carol"].result(TIMEOUT_S)


# ------------------------------------------------------------------------------------------ listeners


def test_listener_flags_parse_like_kafkas() -> None:
    import click

    from riel.cli.listeners import parse_listeners
    from riel.config import Listener

    listeners = parse_listeners(
        ("PLAINTEXT://127.0.0.1:9092", "sasl_plaintext://:9093", "SASL_SSL://[::1]:9094"),
        ("SASL_PLAINTEXT://broker.example:19093",),
        Path("cert.pem"),
    )
    assert listeners == [
        Listener("PLAINTEXT", "127.0.0.1", 9092),
        Listener("SASL_PLAINTEXT", "0.0.0.0", 9093, "broker.example", 19093),
        Listener("SASL_SSL", "::1", 9094),
    ]
    assert listeners[1].advertised == ("broker.example", 19093) and listeners[0].advertised == (
        "127.0.0.1",
        9092,
    )
    for specs, advertised in [
        (("HTTP://h:1",), ()),
        (("PLAINTEXT://h",), ()),
        (("PLAINTEXT://h:1",), ("SSL://x:2",)),
    ]:
        with pytest.raises(click.BadParameter):
            parse_listeners(specs, advertised, None)
