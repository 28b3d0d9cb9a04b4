"""The one place handlers ask "may this request do that?": ``allowed(ctx, request, op, type, name)``.

With the authorizer off (the default) everything is allowed and no ACL file is read. With it on, the
ACLs of ``acls.json`` are loaded on first use and re-read when the file changes (``riel acl --data-dir``
while the server runs), checked at most once a second.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

from riel.broker.authorizer import CLUSTER_NAME, Authorizer, Operation, ResourceType
from riel.config import BrokerConfig
from riel.protocol.headers import Request
from riel.storage.acl_store import AclFileError, AclStore

if TYPE_CHECKING:
    from riel.broker.context import BrokerContext

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S: Final = 1.0


class AccessControl:
    def __init__(self, config: BrokerConfig) -> None:
        self.store = AclStore(config.data_dir)
        self.authorizer = Authorizer(enabled=config.authorizer_enabled, super_users=config.super_users)
        self._next_refresh = 0.0
        self._loaded = False

    def current(self) -> Authorizer:
        """The authorizer, with the ACL file re-read if it changed (checked at most once a second)."""
        if self.authorizer.enabled:
            now = time.monotonic()
            if now >= self._next_refresh:
                self._next_refresh = now + REFRESH_INTERVAL_S
                self.reload(force=not self._loaded)
        return self.authorizer

    def reload(self, *, force: bool = True) -> None:
        """Hand the authorizer the stored ACLs (``force``: even if the file looks unchanged, as after
        CreateAcls / DeleteAcls). A damaged file keeps the ACLs last read, logged: stale rules are
        better than none or all."""
        try:
            changed = self.store.refresh()
            acls = self.store.acls()
        except AclFileError as exc:
            log.error("keeping the ACLs last read: %s", exc)
            return
        if changed or force:
            self.authorizer.replace_acls(acls)
            self._loaded = True


def access_control(ctx: BrokerContext) -> AccessControl:
    if ctx.access is None:
        ctx.access = AccessControl(ctx.config)
    return ctx.access


def allowed(
    ctx: BrokerContext, request: Request, operation: Operation, resource_type: ResourceType, name: str
) -> bool:
    """May ``request``'s principal do ``operation`` on the resource? Always True with the authorizer off."""
    if not ctx.config.authorizer_enabled:
        return True
    authorizer = access_control(ctx).current()
    return authorizer.authorize(request.principal, request.client_host, operation, resource_type, name)


def topic_allowed(ctx: BrokerContext, request: Request, operation: Operation, topic: str) -> bool:
    return allowed(ctx, request, operation, ResourceType.TOPIC, topic)


def group_allowed(ctx: BrokerContext, request: Request, operation: Operation, group: str) -> bool:
    return allowed(ctx, request, operation, ResourceType.GROUP, group)


def cluster_allowed(ctx: BrokerContext, request: Request, operation: Operation) -> bool:
    return allowed(ctx, request, operation, ResourceType.CLUSTER, CLUSTER_NAME)


def any_topic_allowed(ctx: BrokerContext, request: Request, operation: Operation) -> bool:
    if not ctx.config.authorizer_enabled:
        return True
    authorizer = access_control(ctx).current()
    return authorizer.authorize_any_topic(request.principal, request.client_host, operation)
