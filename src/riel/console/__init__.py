"""The web face of ``riel serve``: console pages, ``/metrics`` and ``/health`` (an ASGI app)."""
