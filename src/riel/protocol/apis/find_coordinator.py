"""FindCoordinator (key 10): which broker coordinates a group (key_type 0) or transaction (1).

v4 batches: ``coordinator_keys`` in, one ``coordinators`` entry per key out, replacing the single-key
fields of v0-3.
"""

from riel.protocol.schema import INT8, INT16, INT32, STRING, ApiSchema, Array, Field

FIND_COORDINATOR = ApiSchema(
    key=10,
    name="FindCoordinator",
    min_version=0,
    max_version=4,
    flexible="3+",
    request=(
        Field("key", STRING, "0-3"),
        Field("key_type", INT8, "1+", default=0),
        Field("coordinator_keys", Array(STRING), "4+"),
    ),
    response=(
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16, "0-3"),
        Field("error_message", STRING, "1-3", nullable="1-3"),
        Field("node_id", INT32, "0-3"),
        Field("host", STRING, "0-3"),
        Field("port", INT32, "0-3"),
        Field(
            "coordinators",
            Array(
                [
                    Field("key", STRING, "4+"),
                    Field("node_id", INT32, "4+"),
                    Field("host", STRING, "4+"),
                    Field("port", INT32, "4+"),
                    Field("error_code", INT16, "4+"),
                    Field("error_message", STRING, "4+", nullable="4+"),
                ]
            ),
            "4+",
        ),
    ),
)
