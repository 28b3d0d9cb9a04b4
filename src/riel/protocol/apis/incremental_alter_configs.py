"""IncrementalAlterConfigs (key 44): set, delete, append to or subtract from individual config keys."""

from riel.protocol.schema import BOOL, INT8, INT16, INT32, STRING, ApiSchema, Array, Field

INCREMENTAL_ALTER_CONFIGS = ApiSchema(
    key=44,
    name="IncrementalAlterConfigs",
    min_version=0,
    max_version=1,
    flexible="1+",
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
                                Field("config_operation", INT8),
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
