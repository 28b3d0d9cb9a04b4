"""Build configuration beyond pyproject.toml: the optional C fast path for record sections.

``optional=True``: without a compiler the install still succeeds and ``riel.records.fast_records``
falls back to pure Python (``fast_records.SPEEDUPS`` tells which one is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "riel.records._speedups",
            sources=["src/riel/records/_speedups.c"],
            optional=True,
        )
    ]
)
