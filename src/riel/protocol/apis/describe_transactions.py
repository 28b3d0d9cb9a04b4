"""DescribeTransactions (key 65): state, timing and partitions of transactions, by transactional id."""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Array, Field

DESCRIBE_TRANSACTIONS = ApiSchema(
    key=65,
    name="DescribeTransactions",
    min_version=0,
    max_version=0,
    flexible="0+",
    request=(Field("transactional_ids", Array(STRING)),),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "transaction_states",
            Array(
                [
                    Field("error_code", INT16),
                    Field("transactional_id", STRING),
                    Field("transaction_state", STRING),
                    Field("transaction_timeout_ms", INT32),
                    Field("transaction_start_time_ms", INT64),
                    Field("producer_id", INT64),
                    Field("producer_epoch", INT16),
                    Field(
                        "topics",
                        Array(
                            [
                                Field("topic", STRING),
                                Field("partitions", Array(INT32)),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
)
