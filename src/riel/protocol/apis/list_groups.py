"""ListGroups (key 16): the groups a broker coordinates, optionally filtered by state (v4+)."""

from riel.protocol.schema import INT16, INT32, STRING, ApiSchema, Array, Field

LIST_GROUPS = ApiSchema(
    key=16,
    name="ListGroups",
    min_version=0,
    max_version=4,
    flexible="3+",
    request=(Field("states_filter", Array(STRING), "4+"),),
    response=(
        Field("throttle_time_ms", INT32, "1+"),
        Field("error_code", INT16),
        Field(
            "groups",
            Array(
                [
                    Field("group_id", STRING),
                    Field("protocol_type", STRING),
                    Field("group_state", STRING, "4+"),
                ]
            ),
        ),
    ),
)
