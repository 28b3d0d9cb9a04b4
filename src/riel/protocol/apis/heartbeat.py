"""Heartbeat (key 12): a member says it is alive; the answer tells it when to rejoin."""

from riel.protocol.schema import INT16, INT32, STRING, ApiSchema, Field

HEARTBEAT = ApiSchema(
    key=12,
    name="Heartbeat",
    min_version=0,
    max_version=4,
    flexible="4+",
    request=(
        Field("group_id", STRING),
        Field("generation_id", INT32),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, "3+", nullable="3+", default=None),
    ),
    response=(
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16),
    ),
)
