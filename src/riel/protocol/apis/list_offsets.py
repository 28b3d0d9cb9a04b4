"""ListOffsets (key 2): the offset for a timestamp, or the earliest/latest offset of a partition."""

from riel.protocol.schema import INT8, INT16, INT32, INT64, STRING, ApiSchema, Array, Field

LIST_OFFSETS = ApiSchema(
    key=2,
    name="ListOffsets",
    min_version=1,
    max_version=7,
    flexible="6+",
    request=(
        Field("replica_id", INT32),
        Field("isolation_level", INT8, "2+"),
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING),
                    Field(
                        "partitions",
                        Array(
                            [
                                Field("partition_index", INT32),
                                Field("current_leader_epoch", INT32, "4+", default=-1),
                                Field("timestamp", INT64),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32, "2+"),
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING),
                    Field(
                        "partitions",
                        Array(
                            [
                                Field("partition_index", INT32),
                                Field("error_code", INT16),
                                Field("timestamp", INT64, "1+", default=-1),
                                Field("offset", INT64, "1+", default=-1),
                                Field("leader_epoch", INT32, "4+", default=-1),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
)
