"""DeleteAcls (key 31): remove every ACL matching each filter; the response lists what each removed."""

from riel.protocol.schema import INT8, INT16, INT32, STRING, ApiSchema, Array, Field

DELETE_ACLS = ApiSchema(
    key=31,
    name="DeleteAcls",
    min_version=1,
    max_version=3,
    flexible="2+",
    request=(
        Field(
            "filters",
            Array(
                [
                    Field("resource_type_filter", INT8),
                    Field("resource_name_filter", STRING, nullable="0+"),
                    Field("pattern_type_filter", INT8, versions="1+", default=3),
                    Field("principal_filter", STRING, nullable="0+"),
                    Field("host_filter", STRING, nullable="0+"),
                    Field("operation", INT8),
                    Field("permission_type", INT8),
                ]
            ),
        ),
    ),
    response=(
        Field("throttle_time_ms", INT32),
        Field(
            "filter_results",
            Array(
                [
                    Field("error_code", INT16),
                    Field("error_message", STRING, nullable="0+"),
                    Field(
                        "matching_acls",
                        Array(
                            [
                                Field("error_code", INT16),
                                Field("error_message", STRING, nullable="0+"),
                                Field("resource_type", INT8),
                                Field("resource_name", STRING),
                                Field("pattern_type", INT8, versions="1+", default=3),
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
