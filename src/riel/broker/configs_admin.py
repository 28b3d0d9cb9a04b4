"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (and a read-only broker view)."""

from __future__ import annotations

from riel.broker.access import cluster_allowed, topic_allowed
from riel.broker.authorizer import Operation
from riel.broker.context import BrokerContext
from riel.broker.topic_configs import CONFIG_TYPES
from riel.errors import ErrorCode, KafkaApiError, StorageError
from riel.protocol.headers import Request
from riel.protocol.schema import Message
from riel.storage.log_config import validate_topic_configs

TOPIC = 2
BROKER = 4

SOURCE_DYNAMIC_TOPIC = 1
SOURCE_STATIC_BROKER = 4
SOURCE_DEFAULT = 5

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _broker_configs(ctx: BrokerContext) -> dict[str, str]:
    cfg = ctx.config
    return {
        "broker.id": str(cfg.node_id),
        "log.dirs": str(cfg.data_dir),
        "num.partitions": str(cfg.num_partitions),
        "auto.create.topics.enable": str(cfg.auto_create_topics).lower(),
        "socket.request.max.bytes": str(cfg.max_request_bytes),
        "riel.flush.policy": cfg.flush.name,
    }


async def handle_describe_configs(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    results: list[Message] = []
    for res in body["resources"]:
        entry: Message = {
            "error_code": 0,
            "error_message": None,
            "resource_type": res["resource_type"],
            "resource_name": res["resource_name"],
            "configs": [],
        }
        results.append(entry)
        try:
            _authorize(ctx, request, res, Operation.DESCRIBE_CONFIGS)
        except KafkaApiError as exc:
            entry.update(error_code=exc.code, error_message=exc.message)
            continue
        keys: list[str] | None = res["configuration_keys"]
        if res["resource_type"] == TOPIC:
            info = ctx.log.topics().get(res["resource_name"])
            if info is None:
                entry["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                entry["error_message"] = f"topic {res['resource_name']!r} does not exist"
                continue
            effective = ctx.log.effective_config(info.name)
            for name in sorted(effective):
                if keys is not None and name not in keys:
                    continue
                source = SOURCE_DYNAMIC_TOPIC if name in info.configs else SOURCE_DEFAULT
                entry["configs"].append(
                    _config_entry(
                        name, effective[name], source, CONFIG_TYPES.get(name, 2), body["include_synonyms"]
                    )
                )
        elif res["resource_type"] == BROKER:
            for name, value in sorted(_broker_configs(ctx).items()):
                if keys is not None and name not in keys:
                    continue
                entry["configs"].append(
                    _config_entry(
                        name, value, SOURCE_STATIC_BROKER, 2, body["include_synonyms"], read_only=True
                    )
                )
        else:
            entry["error_code"] = ErrorCode.INVALID_REQUEST
            entry["error_message"] = f"resource type {res['resource_type']} is not supported"
    return {"throttle_time_ms": 0, "results": results}


def _config_entry(
    name: str, value: str, source: int, config_type: int, synonyms: bool, read_only: bool = False
) -> Message:
    return {
        "name": name,
        "value": value,
        "read_only": read_only,
        "is_default": source == SOURCE_DEFAULT,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": [{"name": name, "value": value, "source": source}] if synonyms else [],
        "config_type": config_type,
        "documentation": None,
    }


def _resource_response(res: Message, exc: KafkaApiError | StorageError | None) -> Message:
    return {
        "error_code": exc.code if exc else 0,
        "error_message": (exc.message or None) if exc else None,
        "resource_type": res["resource_type"],
        "resource_name": res["resource_name"],
    }


def _authorize(ctx: BrokerContext, request: Request, res: Message, operation: Operation) -> None:
    """TOPIC_/CLUSTER_AUTHORIZATION_FAILED unless the principal may do ``operation`` on ``res``."""
    if res["resource_type"] == TOPIC and not topic_allowed(ctx, request, operation, res["resource_name"]):
        raise KafkaApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed")
    if res["resource_type"] == BROKER and not cluster_allowed(ctx, request, operation):
        raise KafkaApiError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed")


def _check_topic(ctx: BrokerContext, res: Message) -> dict[str, str]:
    if res["resource_type"] != TOPIC:
        raise KafkaApiError(
            ErrorCode.INVALID_REQUEST,
            "only topic configs can be altered; broker settings come from `riel serve` flags",
        )
    info = ctx.log.topics().get(res["resource_name"])
    if info is None:
        raise KafkaApiError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {res['resource_name']!r} does not exist"
        )
    return dict(info.configs)


async def handle_alter_configs(ctx: BrokerContext, request: Request) -> Message:
    """Legacy AlterConfigs: the given set replaces every dynamic config of the topic."""
    body = request.body
    responses: list[Message] = []
    for res in body["resources"]:
        try:
            _authorize(ctx, request, res, Operation.ALTER_CONFIGS)
            _check_topic(ctx, res)
            configs = validate_topic_configs({c["name"]: c["value"] for c in res["configs"]})
            if not body["validate_only"]:
                ctx.log.alter_topic_configs(res["resource_name"], configs)
        except (KafkaApiError, StorageError) as exc:
            responses.append(_resource_response(res, exc))
        else:
            responses.append(_resource_response(res, None))
    return {"throttle_time_ms": 0, "responses": responses}


async def handle_incremental_alter_configs(ctx: BrokerContext, request: Request) -> Message:
    body = request.body
    responses: list[Message] = []
    for res in body["resources"]:
        try:
            _authorize(ctx, request, res, Operation.ALTER_CONFIGS)
            current = _check_topic(ctx, res)
            for change in res["configs"]:
                _apply(current, change)
            configs = validate_topic_configs(dict(current))
            if not body["validate_only"]:
                ctx.log.alter_topic_configs(res["resource_name"], configs)
        except (KafkaApiError, StorageError) as exc:
            responses.append(_resource_response(res, exc))
        else:
            responses.append(_resource_response(res, None))
    return {"throttle_time_ms": 0, "responses": responses}


def _apply(current: dict[str, str], change: Message) -> None:
    name, op, value = change["name"], change["config_operation"], change["value"]
    if op == SET:
        if value is None:
            raise KafkaApiError(ErrorCode.INVALID_CONFIG, f"SET of {name!r} needs a value")
        current[name] = value
    elif op == DELETE:
        current.pop(name, None)
    elif op in (APPEND, SUBTRACT):
        if CONFIG_TYPES.get(name) != 7:
            raise KafkaApiError(
                ErrorCode.INVALID_CONFIG, f"APPEND/SUBTRACT only apply to list configs, not {name!r}"
            )
        items = [v for v in current.get(name, "").split(",") if v]
        for v in (value or "").split(","):
            if op == APPEND and v and v not in items:
                items.append(v)
            if op == SUBTRACT and v in items:
                items.remove(v)
        current[name] = ",".join(items)
    else:
        raise KafkaApiError(ErrorCode.INVALID_REQUEST, f"unknown config operation {op}")
