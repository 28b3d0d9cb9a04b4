"""The command line: ``riel serve`` and friends."""
