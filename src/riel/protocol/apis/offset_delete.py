"""OffsetDelete (key 47): delete a group's committed offsets for some partitions."""

from riel.protocol.schema import INT16, INT32, STRING, ApiSchema, Array, Field

OFFSET_DELETE = ApiSchema(
    key=47,
    name="OffsetDelete",
    min_version=0,
    max_version=0,
    flexible="none",
    request=(
        Field("group_id", STRING),
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
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
    response=(
        Field("error_code", INT16),
        Field("throttle_time_ms", INT32),
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
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
)
