"""SaslHandshake (key 17): the client names a SASL mechanism; the broker lists the ones it enables.

v0 is followed by raw SASL tokens, each framed by a 4-byte length (no Kafka header); v1 by
SaslAuthenticate requests carrying the same tokens.
"""

from riel.protocol.schema import INT16, STRING, ApiSchema, Array, Field

SASL_HANDSHAKE = ApiSchema(
    key=17,
    name="SaslHandshake",
    min_version=0,
    max_version=1,
    flexible="none",
    request=(Field("mechanism", STRING),),
    response=(
        Field("error_code", INT16),
        Field("mechanisms", Array(STRING)),
    ),
)
