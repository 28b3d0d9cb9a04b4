"""The principal of a TLS client certificate, as Kafka names it with ``ssl.principal.mapping.rules=DEFAULT``:
``"User:" + X500Principal.getName()``, the subject as an RFC 2253 distinguished name.

Java's RFC 2253 form lists the RDNs most specific first (the reverse of their order in the certificate),
joins multi-valued RDNs with ``+``, writes CN, C, L, ST, O, OU, STREET, DC and UID by keyword and every
other attribute as its dotted OID with ``#`` and the hex of its DER encoding (an e-mail address becomes
``1.2.840.113549.1.9.1=#16...``), and escapes ``, = + < > # ; " \\`` with a backslash, a NUL as ``\\00``
and leading or trailing spaces. The subject is read from the certificate's DER encoding, because the
hex form needs the value's original ASN.1 string type, which ``getpeercert()``'s dict does not keep."""

from __future__ import annotations

# The attribute types Java's X500Principal names by keyword in RFC 2253 form.
RFC2253_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}

# DER tags of the string types Java writes as text (isDerString); any other value is written as hex.
_TEXT_TAGS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # T61String
    0x16: "latin-1",  # IA5String
    0x1B: "latin-1",  # GeneralString
    0x1E: "utf-16-be",  # BMPString
}
_ESCAPED = ',=+<>#;"\\'

_SEQUENCE, _SET, _OID = 0x30, 0x31, 0x06


class CertificateError(ValueError):
    """The bytes are not a DER X.509 certificate this module can read."""


def principal_from_certificate(der: bytes) -> str:
    """``User:`` plus the subject of the DER-encoded certificate, e.g. ``User:CN=alice,OU=eng,O=Acme``."""
    return "User:" + rfc2253_name(certificate_subject(der))


def certificate_subject(der: bytes) -> bytes:
    """The DER encoding of a certificate's subject Name."""
    tag, cert, _ = _read(der, 0)
    if tag != _SEQUENCE:
        raise CertificateError("a certificate is a SEQUENCE")
    tag, tbs, _ = _read(cert, 0)
    if tag != _SEQUENCE:
        raise CertificateError("tbsCertificate is a SEQUENCE")
    position = 0
    tag, _, after = _read(tbs, position)
    if tag == 0xA0:  # [0] version, optional
        position = after
    # serialNumber, signature, issuer, validity, then subject
    for _ in range(4):
        _, _, position = _read(tbs, position)
    start = position
    tag, _, end = _read(tbs, position)
    if tag != _SEQUENCE:
        raise CertificateError("the subject is a SEQUENCE")
    return tbs[start:end]


def rfc2253_name(name_der: bytes) -> str:
    """A DER-encoded X.501 Name as Java's ``X500Principal.getName()`` writes it (RFC 2253)."""
    tag, rdns, end = _read(name_der, 0)
    if tag != _SEQUENCE or end != len(name_der):
        raise CertificateError("a Name is one SEQUENCE")
    written: list[str] = []
    position = 0
    while position < len(rdns):
        tag, rdn, position = _read(rdns, position)
        if tag != _SET:
            raise CertificateError("a RelativeDistinguishedName is a SET")
        avas: list[str] = []
        inner = 0
        while inner < len(rdn):
            tag, ava, inner = _read(rdn, inner)
            if tag != _SEQUENCE:
                raise CertificateError("an AttributeTypeAndValue is a SEQUENCE")
            avas.append(_ava(ava))
        written.append("+".join(avas))
    return ",".join(reversed(written))


def escape_value(text: str) -> str:
    """An attribute value's text escaped as Java's RFC 2253 writer does."""
    escaped = "".join("\\00" if c == "\0" else "\\" + c if c in _ESCAPED else c for c in text)
    lead = len(escaped) - len(escaped.lstrip(" \r"))
    trail = len(escaped) - len(escaped.rstrip(" \r"))
    if lead == len(escaped):  # nothing but whitespace: every character is leading
        return "".join("\\" + c for c in escaped)
    body = escaped[lead : len(escaped) - trail]
    return (
        "".join("\\" + c for c in escaped[:lead])
        + body
        + "".join("\\" + c for c in escaped[len(escaped) - trail :])
    )


def _ava(ava: bytes) -> str:
    tag, oid_bytes, position = _read(ava, 0)
    if tag != _OID:
        raise CertificateError("an attribute type is an OBJECT IDENTIFIER")
    oid = _oid(oid_bytes)
    value_start = position
    tag, value, end = _read(ava, position)
    keyword = RFC2253_KEYWORDS.get(oid)
    encoding = _TEXT_TAGS.get(tag)
    if keyword is None or encoding is None:
        return f"{keyword or oid}=#{ava[value_start:end].hex()}"
    try:
        text = value.decode(encoding)
    except UnicodeDecodeError:
        return f"{keyword}=#{ava[value_start:end].hex()}"
    return f"{keyword}={escape_value(text)}"


def _oid(content: bytes) -> str:
    if not content:
        raise CertificateError("an empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise CertificateError("a truncated OBJECT IDENTIFIER")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _read(data: bytes, position: int) -> tuple[int, bytes, int]:
    """The DER element at ``position``: its tag, its contents and the position after it."""
    if position + 2 > len(data):
        raise CertificateError("truncated DER")
    tag = data[position]
    if tag & 0x1F == 0x1F:
        raise CertificateError("multi-byte DER tags are not used in certificate names")
    length = data[position + 1]
    position += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or position + count > len(data):
            raise CertificateError("a bad DER length")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    end = position + length
    if end > len(data):
        raise CertificateError("truncated DER")
    return tag, data[position:end], end
