"""DescribeConfigs (key 32): the configuration of topics and brokers."""

from riel.protocol.schema import BOOL, INT8, INT16, INT32, STRING, ApiSchema, Array, Field

DESCRIBE_CONFIGS = ApiSchema(
    key=32,
    name="DescribeConfigs",
    min_version=1,
    max_version=4,
    flexible="4+",
    request=(
        Field(
            "resources",
            Array(
                [
                    Field("resource_type", INT8),
                    Field("resource_name", STRING),
                    Field("configuration_keys", Array(STRING), nullable="0+"),
                ]
            ),
        ),
        Field("include_synonyms", BOOL, "1+", default=False),
        Field("include_documentation", BOOL, "3+", default=False),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "results",
            Array(
                [
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+"),
                    Field("resource_type", INT8),
                    Field("resource_name", STRING),
                    Field(
                        "configs",
                        Array(
                            [
                                Field("name", STRING),
                                Field("value", STRING, nullable="0+"),
                                Field("read_only", BOOL),
                                Field("config_source", INT8, "1+", default=-1),
                                Field("is_sensitive", BOOL),
                                Field(
                                    "synonyms",
                                    Array(
                                        [
                                            Field("name", STRING, "1+"),
                                            Field("value", STRING, "1+", nullable="0+"),
                                            Field("source", INT8, "1+"),
                                        ]
                                    ),
                                    "1+",
                                ),
                                Field("config_type", INT8, "3+", default=0),
                                Field("documentation", STRING, "3+", nullable="0+"),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
)
