"""SaslAuthenticate (key 36): one SASL token from the client, one back from the broker."""

from riel.protocol.schema import BYTES, INT16, INT64, STRING, ApiSchema, Field

SASL_AUTHENTICATE = ApiSchema(
    key=36,
    name="SaslAuthenticate",
    min_version=0,
    max_version=2,
    flexible="2+",
    request=(Field("auth_bytes", BYTES),),
    response=(
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+"),
        Field("auth_bytes", BYTES),
        Field("session_lifetime_ms", INT64, "1+", default=0),
    ),
)
