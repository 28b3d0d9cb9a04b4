"""TxnOffsetCommit (key 28): stage a group's offsets inside a transaction, visible once it commits.

v3 (KIP-447) adds the group's generation and member, so the coordinator can fence zombie producers.
"""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Array, Field

TXN_OFFSET_COMMIT = ApiSchema(
    key=28,
    name="TxnOffsetCommit",
    min_version=0,
    max_version=3,
    flexible="3+",
    request=(
        Field("transactional_id", STRING),
        Field("group_id", STRING),
        Field("producer_id", INT64),
        Field("producer_epoch", INT16),
        Field("generation_id", INT32, "3+", default=-1),
        Field("member_id", STRING, "3+"),
        Field("group_instance_id", STRING, "3+", nullable="3+", default=None),
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
                                Field("committed_offset", INT64),
                                Field("committed_leader_epoch", INT32, "2+", default=-1),
                                Field("committed_metadata", STRING, nullable="0+"),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
    response=(
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
