"""The one atomic writer: whole files only, ordinary permissions, exclusive create."""

import os
import stat

import pytest

from embench.fsutil import atomic_write_text


def test_mode_follows_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a" / "board.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone would leave 0o600
    assert path.read_text() == "<html></html>"


def test_replace_and_no_temp_left(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_text(target, "1")
    atomic_write_text(target, "2")
    assert target.read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_exclusive_refuses_existing(tmp_path):
    target = tmp_path / "entry.json"
    atomic_write_text(target, "first", exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write_text(target, "second", exclusive=True)
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]
