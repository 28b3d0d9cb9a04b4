"""CreateAcls (key 30): add access control entries (resource pattern, principal, host, operation,
permission)."""

from riel.protocol.schema import INT8, INT16, INT32, STRING, ApiSchema, Array, Field

CREATE_ACLS = ApiSchema(
    key=30,
    name="CreateAcls",
    min_version=1,
    max_version=3,
    flexible="2+",
    request=(
        Field(
            "creations",
            Array(
                [
                    Field("resource_type", INT8),
                    Field("resource_name", STRING),
                    Field("resource_pattern_type", INT8, versions="1+", default=3),
                    Field("principal", STRING),
                    Field("host", STRING),
                    Field("operation", INT8),
                    Field("permission_type", INT8),
                ]
            ),
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "results",
            Array(
                [
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+"),
                ]
            ),
        ),
    ),
)
