"""CreateTopics (key 19): create topics with a partition count or an explicit replica assignment."""

from riel.protocol.schema import BOOL, INT8, INT16, INT32, STRING, ApiSchema, Array, Field

CREATE_TOPICS = ApiSchema(
    key=19,
    name="CreateTopics",
    min_version=2,
    max_version=5,
    flexible="5+",
    request=(
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING),
                    Field("num_partitions", INT32),
                    Field("replication_factor", INT16),
                    Field(
                        "assignments",
                        Array(
                            [
                                Field("partition_index", INT32),
                                Field("broker_ids", Array(INT32)),
                            ]
                        ),
                    ),
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
        # Kafka's JSON spells these two "timeoutMs" and "validateOnly"; snake_case is the same.
        Field("timeout_ms", INT32, default=60000),
        Field("validate_only", BOOL, "1+", default=False),
    ),
    response=(
        Field("throttle_time_ms", INT32, "2+"),
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING),
                    Field("error_code", INT16),
                    Field("error_message", STRING, "1+", nullable="0+"),
                    Field("topic_config_error_code", INT16, "5+", tag=0),
                    Field("num_partitions", INT32, "5+", default=-1),
                    Field("replication_factor", INT16, "5+", default=-1),
                    Field(
                        "configs",
                        Array(
                            [
                                Field("name", STRING, "5+"),
                                Field("value", STRING, "5+", nullable="5+"),
                                Field("read_only", BOOL, "5+"),
                                Field("config_source", INT8, "5+", default=-1),
                                Field("is_sensitive", BOOL, "5+"),
                            ]
                        ),
                        "5+",
                        nullable="5+",
                    ),
                ]
            ),
        ),
    ),
)
