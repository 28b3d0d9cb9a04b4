"""DeleteGroups (key 42): delete empty groups and their committed offsets."""

from riel.protocol.schema import INT16, INT32, STRING, ApiSchema, Array, Field

DELETE_GROUPS = ApiSchema(
    key=42,
    name="DeleteGroups",
    min_version=0,
    max_version=2,
    flexible="2+",
    request=(
        Field("groups_names", Array(STRING)),  # sic: Kafka's field is "GroupsNames"
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "results",
            Array(
                [
                    Field("group_id", STRING),
                    Field("error_code", INT16),
                ]
            ),
        ),
    ),
)
