"""DeleteRecords (key 21): advance the log start offset of partitions."""

from riel.protocol.schema import INT16, INT32, INT64, STRING, ApiSchema, Array, Field

DELETE_RECORDS = ApiSchema(
    key=21,
    name="DeleteRecords",
    min_version=0,
    max_version=2,
    flexible="2+",
    request=(
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
                                Field("offset", INT64),
                            ]
                        ),
                    ),
                ]
            ),
        ),
        Field("timeout_ms", INT32),
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
                                Field("low_watermark", INT64),
                                Field("error_code", INT16),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
)
