"""ApiVersions (key 18): which APIs and versions the broker speaks."""

from riel.protocol.schema import BOOL, INT16, INT32, INT64, STRING, ApiSchema, Array, Field

API_VERSIONS = ApiSchema(
    key=18,
    name="ApiVersions",
    min_version=0,
    max_version=3,
    flexible="3+",
    header_exempt=True,
    request=(
        Field("client_software_name", STRING, "3+"),
        Field("client_software_version", STRING, "3+"),
    ),
    response=(
        Field("error_code", INT16),
        Field(
            "api_keys",
            Array(
                [
                    Field("api_key", INT16),
                    Field("min_version", INT16),
                    Field("max_version", INT16),
                ]
            ),
        ),
        Field("throttle_time_ms", INT32, "1+"),
        Field(
            "supported_features",
            Array(
                [
                    Field("name", STRING, "3+"),
                    Field("min_version", INT16, "3+"),
                    Field("max_version", INT16, "3+"),
                ]
            ),
            "3+",
            tag=0,
        ),
        Field("finalized_features_epoch", INT64, "3+", tag=1, default=-1),
        Field(
            "finalized_features",
            Array(
                [
                    Field("name", STRING, "3+"),
                    Field("max_version_level", INT16, "3+"),
                    Field("min_version_level", INT16, "3+"),
                ]
            ),
            "3+",
            tag=2,
        ),
        Field("zk_migration_ready", BOOL, "3+", tag=3),
    ),
)
