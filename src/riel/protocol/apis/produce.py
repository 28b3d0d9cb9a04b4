"""Produce (key 0): append record batches to partitions.

Versions 0-2 differ from 3 only by the missing ``transactional_id``; Riel advertises them because
librdkafka < 2.11 checks that Produce starts at v0 (KAFKA-18659), and implements them like any other.
"""

from riel.protocol.schema import INT16, INT32, INT64, RECORDS, STRING, ApiSchema, Array, Field

PRODUCE = ApiSchema(
    key=0,
    name="Produce",
    min_version=0,
    max_version=9,
    flexible="9+",
    request=(
        Field("transactional_id", STRING, "3+", nullable="3+", default=None),
        Field("acks", INT16),
        Field("timeout_ms", INT32),
        Field(
            "topic_data",
            Array(
                [
                    Field("name", STRING, "0-12"),
                    Field(
                        "partition_data",
                        Array(
                            [
                                Field("index", INT32),
                                Field("records", RECORDS, nullable="0+"),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
    response=(
        Field(
            "responses",
            Array(
                [
                    Field("name", STRING, "0-12"),
                    Field(
                        "partition_responses",
                        Array(
                            [
                                Field("index", INT32),
                                Field("error_code", INT16),
                                Field("base_offset", INT64),
                                Field("log_append_time_ms", INT64, "2+", default=-1),
                                Field("log_start_offset", INT64, "5+", default=-1),
                                Field(
                                    "record_errors",
                                    Array(
                                        [
                                            Field("batch_index", INT32, "8+"),
                                            Field(
                                                "batch_index_error_message",
                                                STRING,
                                                "8+",
                                                nullable="8+",
                                                default=None,
                                            ),
                                        ]
                                    ),
                                    "8+",
                                ),
                                Field("error_message", STRING, "8+", nullable="8+", default=None),
                            ]
                        ),
                    ),
                ]
            ),
        ),
        Field("throttle_time_ms", INT32, "1+"),
    ),
)
