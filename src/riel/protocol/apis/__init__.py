"""Every API Riel speaks, by key. Each module describes one API with ``riel.protocol.schema``."""

from riel.protocol.apis.add_offsets_to_txn import ADD_OFFSETS_TO_TXN
from riel.protocol.apis.add_partitions_to_txn import ADD_PARTITIONS_TO_TXN
from riel.protocol.apis.alter_configs import ALTER_CONFIGS
from riel.protocol.apis.alter_user_scram_credentials import ALTER_USER_SCRAM_CREDENTIALS
from riel.protocol.apis.api_versions import API_VERSIONS
from riel.protocol.apis.create_acls import CREATE_ACLS
from riel.protocol.apis.create_partitions import CREATE_PARTITIONS
from riel.protocol.apis.create_topics import CREATE_TOPICS
from riel.protocol.apis.delete_acls import DELETE_ACLS
from riel.protocol.apis.delete_groups import DELETE_GROUPS
from riel.protocol.apis.delete_records import DELETE_RECORDS
from riel.protocol.apis.delete_topics import DELETE_TOPICS
from riel.protocol.apis.describe_acls import DESCRIBE_ACLS
from riel.protocol.apis.describe_configs import DESCRIBE_CONFIGS
from riel.protocol.apis.describe_groups import DESCRIBE_GROUPS
from riel.protocol.apis.describe_transactions import DESCRIBE_TRANSACTIONS
from riel.protocol.apis.describe_user_scram_credentials import DESCRIBE_USER_SCRAM_CREDENTIALS
from riel.protocol.apis.end_txn import END_TXN
from riel.protocol.apis.fetch import FETCH
from riel.protocol.apis.find_coordinator import FIND_COORDINATOR
from riel.protocol.apis.heartbeat import HEARTBEAT
from riel.protocol.apis.incremental_alter_configs import INCREMENTAL_ALTER_CONFIGS
from riel.protocol.apis.init_producer_id import INIT_PRODUCER_ID
from riel.protocol.apis.join_group import JOIN_GROUP
from riel.protocol.apis.leave_group import LEAVE_GROUP
from riel.protocol.apis.list_groups import LIST_GROUPS
from riel.protocol.apis.list_offsets import LIST_OFFSETS
from riel.protocol.apis.list_transactions import LIST_TRANSACTIONS
from riel.protocol.apis.metadata import METADATA
from riel.protocol.apis.offset_commit import OFFSET_COMMIT
from riel.protocol.apis.offset_delete import OFFSET_DELETE
from riel.protocol.apis.offset_fetch import OFFSET_FETCH
from riel.protocol.apis.produce import PRODUCE
from riel.protocol.apis.sasl_authenticate import SASL_AUTHENTICATE
from riel.protocol.apis.sasl_handshake import SASL_HANDSHAKE
from riel.protocol.apis.sync_group import SYNC_GROUP
from riel.protocol.apis.txn_offset_commit import TXN_OFFSET_COMMIT
from riel.protocol.schema import ApiSchema

ALL: tuple[ApiSchema, ...] = (
    PRODUCE,
    FETCH,
    LIST_OFFSETS,
    METADATA,
    OFFSET_COMMIT,
    OFFSET_FETCH,
    FIND_COORDINATOR,
    JOIN_GROUP,
    HEARTBEAT,
    LEAVE_GROUP,
    SYNC_GROUP,
    DESCRIBE_GROUPS,
    LIST_GROUPS,
    SASL_HANDSHAKE,
    API_VERSIONS,
    CREATE_TOPICS,
    DELETE_TOPICS,
    DELETE_RECORDS,
    INIT_PRODUCER_ID,
    ADD_PARTITIONS_TO_TXN,
    ADD_OFFSETS_TO_TXN,
    END_TXN,
    TXN_OFFSET_COMMIT,
    DESCRIBE_ACLS,
    CREATE_ACLS,
    DELETE_ACLS,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    SASL_AUTHENTICATE,
    CREATE_PARTITIONS,
    DELETE_GROUPS,
    INCREMENTAL_ALTER_CONFIGS,
    OFFSET_DELETE,
    DESCRIBE_USER_SCRAM_CREDENTIALS,
    ALTER_USER_SCRAM_CREDENTIALS,
    DESCRIBE_TRANSACTIONS,
    LIST_TRANSACTIONS,
)

APIS: dict[int, ApiSchema] = {api.key: api for api in ALL}

__all__ = [
    "ADD_OFFSETS_TO_TXN",
    "ADD_PARTITIONS_TO_TXN",
    "ALL",
    "ALTER_CONFIGS",
    "ALTER_USER_SCRAM_CREDENTIALS",
    "APIS",
    "API_VERSIONS",
    "CREATE_ACLS",
    "CREATE_PARTITIONS",
    "CREATE_TOPICS",
    "DELETE_ACLS",
    "DELETE_GROUPS",
    "DELETE_RECORDS",
    "DELETE_TOPICS",
    "DESCRIBE_ACLS",
    "DESCRIBE_CONFIGS",
    "DESCRIBE_GROUPS",
    "DESCRIBE_TRANSACTIONS",
    "DESCRIBE_USER_SCRAM_CREDENTIALS",
    "END_TXN",
    "FETCH",
    "FIND_COORDINATOR",
    "HEARTBEAT",
    "INCREMENTAL_ALTER_CONFIGS",
    "INIT_PRODUCER_ID",
    "JOIN_GROUP",
    "LEAVE_GROUP",
    "LIST_GROUPS",
    "LIST_OFFSETS",
    "LIST_TRANSACTIONS",
    "METADATA",
    "OFFSET_COMMIT",
    "OFFSET_DELETE",
    "OFFSET_FETCH",
    "PRODUCE",
    "SASL_AUTHENTICATE",
    "SASL_HANDSHAKE",
    "SYNC_GROUP",
    "TXN_OFFSET_COMMIT",
]
