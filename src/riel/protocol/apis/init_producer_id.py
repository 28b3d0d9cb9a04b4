"""InitProducerId (key 22): allocate a producer id and epoch for idempotent or transactional producers."""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Field

INIT_PRODUCER_ID = ApiSchema(
    key=22,
    name="InitProducerId",
    min_version=0,
    max_version=4,
    flexible="2+",
    request=(
        Field("transactional_id", STRING, nullable="0+"),
        Field("transaction_timeout_ms", INT32),
        Field("producer_id", INT64, "3+", default=-1),
        Field("producer_epoch", INT16, "3+", default=-1),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("producer_id", INT64, default=-1),
        Field("producer_epoch", INT16),
    ),
)
