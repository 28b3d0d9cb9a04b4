"""DescribeUserScramCredentials (key 50): which users have SCRAM credentials, per mechanism."""

from riel.protocol.schema import INT8, INT16, INT32, STRING, ApiSchema, Array, Field

DESCRIBE_USER_SCRAM_CREDENTIALS = ApiSchema(
    key=50,
    name="DescribeUserScramCredentials",
    min_version=0,
    max_version=0,
    flexible="0+",
    request=(Field("users", Array([Field("name", STRING)]), nullable="0+"),),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+"),
        Field(
            "results",
            Array(
                [
                    Field("user", STRING),
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+"),
                    Field(
                        "credential_infos",
                        Array(
                            [
                                Field("mechanism", INT8),
                                Field("iterations", INT32),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
)
