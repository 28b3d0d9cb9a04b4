"""AddPartitionsToTxn (key 24): add partitions to a producer's ongoing transaction before writing to them.

Only the client versions (0-3) are described. v4+ (KIP-890) batches several transactions for
broker-to-broker verification, moving every field under ``transactions``; Riel does not advertise it.
The ``v3_and_below`` names are Kafka's own, kept so the schema reads like its definition.
"""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Array, Field

ADD_PARTITIONS_TO_TXN = ApiSchema(
    key=24,
    name="AddPartitionsToTxn",
    min_version=0,
    max_version=3,
    flexible="3+",
    request=(
        Field("v3_and_below_transactional_id", STRING, "0-3"),
        Field("v3_and_below_producer_id", INT64, "0-3"),
        Field("v3_and_below_producer_epoch", INT16, "0-3"),
        Field(
            "v3_and_below_topics",
            Array(
                [
                    Field("name", STRING),
                    Field("partitions", Array(INT32)),
                ]
            ),
            "0-3",
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "results_by_topic_v3_and_below",
            Array(
                [
                    Field("name", STRING),
                    Field(
                        "results_by_partition",
                        Array(
                            [
                                Field("partition_index", INT32),
                                Field("partition_error_code", INT16),
                            ]
                        ),
                    ),
                ]
            ),
            "0-3",
        ),
    ),
)
