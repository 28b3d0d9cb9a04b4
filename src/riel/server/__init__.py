"""The only layer with sockets: the asyncio listener and the per-connection loop."""
