"""CreatePartitions (key 37): grow the partition count of existing topics."""

from riel.protocol.schema import BOOL, INT16, INT32, STRING, ApiSchema, Array, Field

CREATE_PARTITIONS = ApiSchema(
    key=37,
    name="CreatePartitions",
    min_version=0,
    max_version=2,
    flexible="2+",
    request=(
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING),
                    Field("count", INT32),
                    Field(
                        "assignments",
                        Array(
                            [
                                Field("broker_ids", Array(INT32)),
                            ]
                        ),
                        nullable="0+",
                    ),
                ]
            ),
        ),
        Field("timeout_ms", INT32),
        Field("validate_only", BOOL),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "results",
            Array(
                [
                    Field("name", STRING),
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+", default=None),
                ]
            ),
        ),
    ),
)
