"""AddOffsetsToTxn (key 25): tie a consumer group's offset commits to a producer's transaction."""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Field

ADD_OFFSETS_TO_TXN = ApiSchema(
    key=25,
    name="AddOffsetsToTxn",
    min_version=0,
    max_version=3,
    flexible="3+",
    request=(
        Field("transactional_id", STRING),
        Field("producer_id", INT64),
        Field("producer_epoch", INT16),
        Field("group_id", STRING),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
    ),
)
