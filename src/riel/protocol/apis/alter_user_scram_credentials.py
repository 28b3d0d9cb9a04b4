"""AlterUserScramCredentials (key 51): add, replace or remove users' SCRAM credentials.

The client sends the salted password (Hi(password, salt, iterations)), never the password itself.
"""

from riel.protocol.schema import BYTES, INT8, INT16, INT32, STRING, ApiSchema, Array, Field

ALTER_USER_SCRAM_CREDENTIALS = ApiSchema(
    key=51,
    name="AlterUserScramCredentials",
    min_version=0,
    max_version=0,
    flexible="0+",
    request=(
        Field(
            "deletions",
            Array(
                [
                    Field("name", STRING),
                    Field("mechanism", INT8),
                ]
            ),
        ),
        Field(
            "upsertions",
            Array(
                [
                    Field("name", STRING),
                    Field("mechanism", INT8),
                    Field("iterations", INT32),
                    Field("salt", BYTES),
                    Field("salted_password", BYTES),
                ]
            ),
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "results",
            Array(
                [
                    Field("user", STRING),
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+"),
                ]
            ),
        ),
    ),
)
