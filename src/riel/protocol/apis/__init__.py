"""Every API Riel speaks, by key. Each module describes one API with ``riel.protocol.schema``."""

from riel.protocol.apis.api_versions import API_VERSIONS
from riel.protocol.schema import ApiSchema

ALL: tuple[ApiSchema, ...] = (API_VERSIONS,)

APIS: dict[int, ApiSchema] = {api.key: api for api in ALL}

__all__ = ["ALL", "APIS", "API_VERSIONS"]
