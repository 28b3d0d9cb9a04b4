"""The README's SDK sample runs as written (embedded), and prints what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_sdk_sample_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = README.read_text().split("## Python SDK", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the SDK section lost its python sample"
    monkeypatch.chdir(tmp_path)
    exec(compile(code.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Published(topic='orders'" in out
    assert "b'2 coffees, table 4'" in out and "b'soup'" in out and "b'tart'" in out
    assert "{('orders', 0): 0, ('orders', 1): 0}" in out
    assert (tmp_path / "events" / "metadata.json").exists()
