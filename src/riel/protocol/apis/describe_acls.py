"""DescribeAcls (key 29): the ACLs matching one filter, grouped by resource pattern."""

from riel.protocol.schema import INT8, INT16, INT32, STRING, ApiSchema, Array, Field

DESCRIBE_ACLS = ApiSchema(
    key=29,
    name="DescribeAcls",
    min_version=1,
    max_version=3,
    flexible="2+",
    request=(
        Field("resource_type_filter", INT8),
        Field("resource_name_filter", STRING, nullable="0+"),
        Field("pattern_type_filter", INT8, versions="1+", default=3),
        Field("principal_filter", STRING, nullable="0+"),
        Field("host_filter", STRING, nullable="0+"),
        Field("operation", INT8),
        Field("permission_type", INT8),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field("error_code", INT16),
        Field("error_message", STRING, nullable="0+"),
        Field(
            "resources",
            Array(
                [
                    Field("resource_type", INT8),
                    Field("resource_name", STRING),
                    Field("pattern_type", INT8, versions="1+", default=3),
                    Field(
                        "acls",
                        Array(
                            [
                                Field("principal", STRING),
                                Field("host", STRING),
                                Field("operation", INT8),
                                Field("permission_type", INT8),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ),
)
