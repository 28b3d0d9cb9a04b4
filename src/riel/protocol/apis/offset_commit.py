"""OffsetCommit (key 8): store a group's consumed offsets.

Kafka renamed ``GenerationId`` to ``GenerationIdOrMemberEpoch`` when KIP-848 reused the field; the
wire format did not change, and the name follows Kafka's current definition.
"""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Array, Field

OFFSET_COMMIT = ApiSchema(
    key=8,
    name="OffsetCommit",
    min_version=2,
    max_version=8,
    flexible="8+",
    request=(
        Field("group_id", STRING),
        Field("generation_id_or_member_epoch", INT32, "1+", default=-1),
        Field("member_id", STRING, "1+"),
        Field("group_instance_id", STRING, "7+", nullable="7+", default=None),
        Field("retention_time_ms", INT64, "2-4", default=-1),
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING, "0-9"),
                    Field(
                        "partitions",
                        Array(
                            [
                                Field("partition_index", INT32),
                                Field("committed_offset", INT64),
                                Field("committed_leader_epoch", INT32, "6+", default=-1),
                                Field("committed_metadata", STRING, nullable="0+"),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32, "3+"),
        Field(
            "topics",
            Array(
                [
                    Field("name", STRING, "0-9"),
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
