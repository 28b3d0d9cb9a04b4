"""OffsetFetch (key 9): a group's committed offsets.

v8 batches several groups: ``groups`` replaces the top-level ``group_id``/``topics`` of v1-7 (and the
top-level ``error_code`` moves into each group). A null ``topics`` means every partition of the group.
"""

from riel.protocol.schema import BOOL, INT16, INT32, INT64, STRING, ApiSchema, Array, Field

OFFSET_FETCH = ApiSchema(
    key=9,
    name="OffsetFetch",
    min_version=1,
    max_version=8,
    flexible="6+",
    request=(
        Field("group_id", STRING, "0-7"),
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING, "0-7"),
                    Field("partition_indexes", Array(INT32), "0-7"),
                ]
            ),
            "0-7",
            nullable="2-7",
        ),
        Field(
            "groups",
            Array(
                [
                    Field("group_id", STRING, "8+"),
                    Field(
                        "topics",
                        Array(
                            [
                                Field("name", STRING, "8-9"),
                                Field("partition_indexes", Array(INT32), "8+"),
                            ]
                        ),
                        "8+",
                        nullable="8+",
                    ),
                ]
            ),
            "8+",
        ),
        Field("require_stable", BOOL, "7+", default=False),
    ),
    response=(
        Field("throttle_time_ms", INT32, "3+"),
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING, "0-7"),
                    Field(
                        "partitions",
                        Array(
                            [
                                Field("partition_index", INT32, "0-7"),
                                Field("committed_offset", INT64, "0-7"),
                                Field("committed_leader_epoch", INT32, "5-7", default=-1),
                                Field("metadata", STRING, "0-7", nullable="0-7"),
                                Field("error_code", INT16, "0-7"),
                            ]
                        ),
                        "0-7",
                    ),
                ]
            ),
            "0-7",
        ),
        Field("error_code", INT16, "2-7", default=0),
        Field(
            "groups",
            Array(
                [
                    Field("group_id", STRING, "8+"),
                    Field(
                        "topics",
                        Array(
                            [
                                Field("name", STRING, "8-9"),
                                Field(
                                    "partitions",
                                    Array(
                                        [
                                            Field("partition_index", INT32, "8+"),
                                            Field("committed_offset", INT64, "8+"),
                                            Field("committed_leader_epoch", INT32, "8+", default=-1),
                                            Field("metadata", STRING, "8+", nullable="8+"),
                                            Field("error_code", INT16, "8+"),
                                        ]
                                    ),
                                    "8+",
                                ),
                            ]
                        ),
                        "8+",
                    ),
                    Field("error_code", INT16, "8+", default=0),
                ]
            ),
            "8+",
        ),
    ),
)
