"""ListTransactions (key 66): the transactions a broker coordinates, optionally filtered.

Filters are ANDed; empty means no filter. v1 (KIP-994) adds ``duration_filter``: only transactions
running longer than that many milliseconds (-1: no filter). v2's id pattern (KIP-1152) is not advertised.
"""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Array, Field

LIST_TRANSACTIONS = ApiSchema(
    key=66,
    name="ListTransactions",
    min_version=0,
    max_version=1,
    flexible="0+",
    request=(
        Field("state_filters", Array(STRING)),
        Field("producer_id_filters", Array(INT64)),
        Field("duration_filter", INT64, "1+", default=-1),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("unknown_state_filters", Array(STRING)),
        Field(
            "transaction_states",
            Array(
                [
                    Field("transactional_id", STRING),
                    Field("producer_id", INT64),
                    Field("transaction_state", STRING),
                ]
            ),
        ),
    ),
)
