"""DeleteTopics (key 20): delete topics by name."""

from riel.protocol.schema import INT16, INT32, STRING, ApiSchema, Array, Field

DELETE_TOPICS = ApiSchema(
    key=20,
    name="DeleteTopics",
    min_version=1,
    max_version=4,
    flexible="4+",
    request=(
        Field("topic_names", Array(STRING), "0-5"),
        Field("timeout_ms", INT32),
    ),
    response=(
        Field("throttle_time_ms", INT32, "1+"),
        Field(
            "responses",
            Array(
                [
                    Field("name", STRING, nullable="6+"),
                    Field("error_code", INT16),
                ]
            ),
        ),
    ),
)
