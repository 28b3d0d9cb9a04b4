"""EndTxn (key 26): commit or abort a producer's transaction.

v4 only adds error codes and v5 (KIP-890) returns a bumped producer id and epoch; Riel stops at v3.
"""

from riel.protocol.schema import BOOL, INT16, INT32, INT64, STRING, ApiSchema, Field

END_TXN = ApiSchema(
    key=26,
    name="EndTxn",
    min_version=0,
    max_version=3,
    flexible="3+",
    request=(
        Field("transactional_id", STRING),
        Field("producer_id", INT64),
        Field("producer_epoch", INT16),
        Field("committed", BOOL),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
    ),
)
