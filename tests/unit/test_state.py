"""The persisted resumption handle: atomic replace, age limit, damage tolerated."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pilive.state import HANDLE_FILE_NAME, HandleStore, LoadOutcome


def test_round_trip_with_age(tmp_path: Path) -> None:
    """A saved handle loads back with its age measured from the save time."""
    store = HandleStore(tmp_path / "state")
    store.save("h-1", now_unix_s=1000.0)
    result = store.load(now_unix_s=1060.0, max_age_s=7200)
    assert result.outcome is LoadOutcome.LOADED
    assert result.stored is not None
    assert result.stored.handle == "h-1"
    assert result.stored.age_s(1060.0) == 60.0


def test_newest_handle_wins_and_no_temp_files_remain(tmp_path: Path) -> None:
    """Each save replaces the previous one; the temporary file is renamed, not left behind."""
    store = HandleStore(tmp_path)
    for i in range(5):
        store.save(f"h-{i}", now_unix_s=float(i))
    result = store.load(now_unix_s=5.0, max_age_s=100)
    assert result.stored is not None and result.stored.handle == "h-4"
    assert sorted(p.name for p in tmp_path.iterdir()) == [HANDLE_FILE_NAME]


def test_file_is_private(tmp_path: Path) -> None:
    """The handle resumes the conversation for anyone holding the key: owner-only file mode."""
    store = HandleStore(tmp_path)
    store.save("h", now_unix_s=0.0)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_expired_handle_is_reported_not_loaded(tmp_path: Path) -> None:
    """A handle older than the limit comes back as EXPIRED so a fresh session starts."""
    store = HandleStore(tmp_path)
    store.save("old", now_unix_s=0.0)
    result = store.load(now_unix_s=7201.0, max_age_s=7200)
    assert result.outcome is LoadOutcome.EXPIRED
    assert "7201 s old" in result.detail


def test_missing_file(tmp_path: Path) -> None:
    """No file is the normal first start, not an error."""
    assert HandleStore(tmp_path).load(0.0, 10).outcome is LoadOutcome.MISSING


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 1}',
        b'{"version": 2, "handle": "h", "saved_at_unix_s": 1}',
        b'{"version": 1, "handle": "", "saved_at_unix_s": 1}',
        b'{"version": 1, "handle": "h", "saved_at_unix_s": "1"}',
        b'{"version": 1, "handle": "h", "saved_at_unix_s": true}',
    ],
)
def test_damaged_file_is_corrupt_not_an_exception(tmp_path: Path, content: bytes) -> None:
    """Whatever is in the file, load() returns CORRUPT with the path instead of raising."""
    store = HandleStore(tmp_path)
    store.path.write_bytes(content)
    result = store.load(0.0, 10)
    assert result.outcome is LoadOutcome.CORRUPT
    assert str(store.path) in result.detail


def test_clear_forgets_the_conversation(tmp_path: Path) -> None:
    """After clear() (new conversation) nothing is loaded; clearing twice is harmless."""
    store = HandleStore(tmp_path)
    store.save("h", 0.0)
    store.clear()
    store.clear()
    assert store.load(0.0, 10).outcome is LoadOutcome.MISSING


def test_repr_hides_the_handle(tmp_path: Path) -> None:
    """The handle never appears in logs through repr."""
    store = HandleStore(tmp_path)
    store.save("secret-handle-value", 0.0)
    stored = store.load(0.0, 10).stored
    assert "secret-handle-value" not in repr(stored)


def test_empty_handle_refused(tmp_path: Path) -> None:
    """An empty handle means 'not resumable': storing it would be a bug upstream."""
    with pytest.raises(ValueError, match="empty"):
        HandleStore(tmp_path).save("", 0.0)
