"""AlterConfigs (key 33): replace the whole configuration of topics or brokers."""

from riel.protocol.schema import BOOL, INT8, INT16, INT32, STRING, ApiSchema, Array, Field

ALTER_CONFIGS = ApiSchema(
    key=33,
    name="AlterConfigs",
    min_version=0,
    max_version=2,
    flexible="2+",
    request=(
        Field(
            "resources",
            Array(
                [
                    Field("resource_type", INT8),
                    Field("resource_name", STRING),
                    Field(
                        "configs",
                        Array(
                            [
                                Field("name", STRING),
                                Field("value", STRING, nullable="0+"),
                            ]
                        ),
                    ),
                ]
            ),
        ),
        Field("validate_only", BOOL),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "responses",
            Array(
                [
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+"),
                    Field("resource_type", INT8),
                    Field("resource_name", STRING),
                ]
            ),
        ),
    ),
)
