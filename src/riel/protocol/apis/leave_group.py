"""LeaveGroup (key 13): one member (v0-2) or a batch of members (v3+) leaves a group."""

from riel.protocol.schema import INT16, INT32, STRING, ApiSchema, Array, Field

LEAVE_GROUP = ApiSchema(
    key=13,
    name="LeaveGroup",
    min_version=0,
    max_version=4,
    flexible="4+",
    request=(
        Field("group_id", STRING),
        Field("member_id", STRING, "0-2"),
        Field(
            "members",
            Array(
                [
                    Field("member_id", STRING, "3+"),
                    Field("group_instance_id", STRING, "3+", nullable="3+", default=None),
                ]
            ),
            "3+",
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16),
        Field(
            "members",
            Array(
                [
                    Field("member_id", STRING, "3+"),
                    Field("group_instance_id", STRING, "3+", nullable="3+"),
                    Field("error_code", INT16, "3+"),
                ]
            ),
            "3+",
        ),
    ),
)
