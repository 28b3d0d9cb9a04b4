"""``riel serve --listener`` / ``--advertised-listener``: Kafka's listeners and advertised.listeners."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from riel.config import Listener


def parse_listeners(
    specs: tuple[str, ...], advertised_specs: tuple[str, ...], ssl_certfile: Path | None
) -> list[Listener]:
    """The listeners to open (empty: the default PLAINTEXT listener of --host/--port)."""
    listeners: dict[str, Listener] = {}
    for spec in specs:
        try:
            listener = Listener.parse(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--listener") from None
        if listener.name in listeners:
            raise click.BadParameter(f"listener {listener.name} given twice", param_hint="--listener")
        if listener.tls and ssl_certfile is None:
            raise click.BadParameter(
                f"listener {listener.name} uses TLS: give --ssl-certfile and --ssl-keyfile",
                param_hint="--listener",
            )
        listeners[listener.name] = listener
    for spec in advertised_specs:
        try:
            advertised = Listener.parse(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--advertised-listener") from None
        if advertised.name not in listeners:
            raise click.BadParameter(
                f"no --listener named {advertised.name} to advertise", param_hint="--advertised-listener"
            )
        listeners[advertised.name] = dataclasses.replace(
            listeners[advertised.name], advertised_host=advertised.host, advertised_port=advertised.port
        )
    return list(listeners.values())
