"""The principal of a TLS client certificate: the subject in RFC 2253 form, as Java's
X500Principal.getName() writes it and Kafka's DEFAULT ssl.principal.mapping.rules use it."""

from __future__ import annotations

import ssl

import pytest

from riel.server.tls_principal import (
    CertificateError,
    certificate_subject,
    escape_value,
    principal_from_certificate,
    rfc2253_name,
)

# openssl req -x509 -newkey ec -subj "/O=Acme, Inc./OU=eng/CN=alice/emailAddress=a@x.io"
ALICE_PEM = """-----BEGIN CERTIFICATE-----
MIIB6jCCAY+gAwIBAgIUaTpD6rYx8aY4AwLZQ+AVyZzSOD8wCgYIKoZIzj0EAwIw
SjETMBEGA1UECgwKQWNtZSwgSW5jLjEMMAoGA1UECwwDZW5nMQ4wDAYDVQQDDAVh
bGljZTEVMBMGCSqGSIb3DQEJARYGYUB4LmlvMB4XDTI2MTEyODE1MDkxM1oXDTM2
MTEyNTE1MDkxM1owSjETMBEGA1UECgwKQWNtZSwgSW5jLjEMMAoGA1UECwwDZW5n
MQ4wDAYDVQQDDAVhbGljZTEVMBMGCSqGSIb3DQEJARYGYUB4LmlvMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEogbvmGbcXGJMCVuRc/vcNcXHdeFK5DJvKkhOivfi
KV7Vb88iaUUAC6z+ERk1l4F143nfyf37svVr15FjabpIuqNTMFEwHQYDVR0OBBYE
FCkdMeEnKMft3UzwHhiYvPonCSlqMB8GA1UdIwQYMBaAFCkdMeEnKMft3UzwHhiY
vPonCSlqMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAM0JKzpQ
KuzQmDHHGoJUjFR7CownGoDOvkbhvDXYM3XqAiEA0zIqHNp80gNwcTqvOsTdMc+t
RyKt/zAbNZtcd9/sIyM=
-----END CERTIFICATE-----
"""

CN, C, ORG, OU, L, TITLE = "2.5.4.3", "2.5.4.6", "2.5.4.10", "2.5.4.11", "2.5.4.7", "2.5.4.12"
UTF8, PRINTABLE, IA5, BMP, OCTETS = 0x0C, 0x13, 0x16, 0x1E, 0x04


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | 2]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + content


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([arcs[0] * 40 + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def name(*rdns: list[tuple[str, int, bytes]]) -> bytes:
    """A DER Name; RDNs in certificate order (least specific first), each a list of (oid, tag, value)."""
    return der(
        0x30,
        b"".join(der(0x31, b"".join(der(0x30, oid(o) + der(t, v)) for o, t, v in rdn)) for rdn in rdns),
    )


def test_most_specific_rdn_comes_first() -> None:
    subject = name(
        [(C, PRINTABLE, b"DE")], [(ORG, UTF8, b"Acme")], [(OU, UTF8, b"eng")], [(CN, UTF8, b"alice")]
    )
    assert rfc2253_name(subject) == "CN=alice,OU=eng,O=Acme,C=DE"


def test_special_characters_are_escaped_like_java() -> None:
    subject = name([(ORG, UTF8, b'A,B+C"D\\E<F>G;H=I#J')], [(CN, UTF8, "Zoë Ünal".encode())])
    assert rfc2253_name(subject) == 'CN=Zoë Ünal,O=A\\,B\\+C\\"D\\\\E\\<F\\>G\\;H\\=I\\#J'
    assert escape_value("#lead") == "\\#lead"
    assert escape_value("  padded ") == "\\ \\ padded\\ "
    assert escape_value("   ") == "\\ \\ \\ "
    assert escape_value("nul\0") == "nul\\00"
    assert escape_value("") == ""


def test_multi_valued_rdn_is_joined_with_plus() -> None:
    subject = name([(ORG, UTF8, b"Acme")], [(CN, UTF8, b"alice"), (L, UTF8, b"Berlin")])
    assert rfc2253_name(subject) == "CN=alice+L=Berlin,O=Acme"


def test_other_attributes_are_dotted_oids_with_hex_der() -> None:
    email = "1.2.840.113549.1.9.1"
    subject = name([(email, IA5, b"a@x.io")], [(TITLE, UTF8, b"boss")], [(CN, OCTETS, b"\x01")])
    assert rfc2253_name(subject) == (
        "CN=#040101,2.5.4.12=#0c04626f7373,1.2.840.113549.1.9.1=#16066140782e696f"
    )
    assert rfc2253_name(name([(CN, BMP, "hé".encode("utf-16-be"))])) == "CN=hé"
    assert rfc2253_name(name()) == ""


def test_principal_of_a_real_certificate() -> None:
    cert = ssl.PEM_cert_to_DER_cert(ALICE_PEM)
    assert certificate_subject(cert).startswith(b"\x30\x4a\x31")
    assert principal_from_certificate(cert) == (
        "User:1.2.840.113549.1.9.1=#16066140782e696f,CN=alice,OU=eng,O=Acme\\, Inc."
    )


@pytest.mark.parametrize(
    "garbage", [b"", b"\x30", b"\x30\x05\x30\x00", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"]
)
def test_garbage_is_refused(garbage: bytes) -> None:
    with pytest.raises(CertificateError):
        principal_from_certificate(garbage)
