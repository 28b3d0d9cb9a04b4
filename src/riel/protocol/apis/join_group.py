"""JoinGroup (key 11): join a consumer group; the response names the leader and, to it, the members."""

from riel.protocol.schema import BYTES, INT16, INT32, STRING, ApiSchema, Array, Field

JOIN_GROUP = ApiSchema(
    key=11,
    name="JoinGroup",
    min_version=0,
    max_version=7,
    flexible="6+",
    request=(
        Field("group_id", STRING),
        Field("session_timeout_ms", INT32),
        Field("rebalance_timeout_ms", INT32, "1+", default=-1),
        Field("member_id", STRING),
        Field("group_instance_id", STRING, "5+", nullable="5+", default=None),
        Field("protocol_type", STRING),
        Field(
            "protocols",
            Array(
                [
                    Field("name", STRING),
                    Field("metadata", BYTES),
                ]
            ),
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32, "2+"),
        Field("error_code", INT16),
        Field("generation_id", INT32, default=-1),
        Field("protocol_type", STRING, "7+", nullable="7+", default=None),
        Field("protocol_name", STRING, nullable="7+"),
        Field("leader", STRING),
        Field("member_id", STRING),
        Field(
            "members",
            Array(
                [
                    Field("member_id", STRING),
                    Field("group_instance_id", STRING, "5+", nullable="5+", default=None),
                    Field("metadata", BYTES),
                ]
            ),
        ),
    ),
)
