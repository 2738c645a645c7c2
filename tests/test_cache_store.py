"""The disk store: bytes-only Disk, directory safety, tags, culling, no pickle anywhere."""

from __future__ import annotations

import os
import pickle
import sqlite3
from pathlib import Path

import pytest
from _cache_helpers import assert_no_pickle
from diskcache.core import MODE_PICKLE, MODE_RAW

from procsupervisor.cache.directory import secure_cache_dir
from procsupervisor.cache.disk import BytesOnlyDisk
from procsupervisor.cache.errors import CacheDirectoryError, NotBytesError
from procsupervisor.cache.store import EntryKind, SymbolStore, index_tag


def test_directory_created_private(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "a" / "cache", 1 << 20)
    assert os.stat(store.directory).st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(CacheDirectoryError, match="group- or world-writable"):
        SymbolStore(directory, 1 << 20)


def test_owned_by_another_user_is_refused_without_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    owner = os.stat(directory).st_uid
    # seen from another user, the directory is someone else's
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    with pytest.raises(CacheDirectoryError, match=f"owned by uid {owner}, not by this user"):
        SymbolStore(directory, 1 << 20)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    with pytest.raises(CacheDirectoryError, match="owned by uid 65534"):
        secure_cache_dir(directory)


def test_symlink_and_file_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(CacheDirectoryError, match="symbolic link"):
        secure_cache_dir(tmp_path / "link")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(CacheDirectoryError):
        secure_cache_dir(tmp_path / "file")


def test_index_roundtrip_is_mmapped(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "c", 1 << 20)
    data = os.urandom(5000)
    store.put_index("libc.so/ABC", data)
    entry = store.lookup("libc.so/ABC")
    assert entry.kind is EntryKind.INDEX
    assert bytes(entry.buffer) == data
    assert type(entry.buffer).__name__ == "mmap"
    assert store.lookup("other/ABC").kind is EntryKind.ABSENT


def test_negative_entry_expires(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "c", 1 << 20)
    store.put_negative("x.pdb/1", ttl_s=0.2)
    entry = store.lookup("x.pdb/1")
    assert entry.kind is EntryKind.NEGATIVE and entry.expires_at is not None
    store.cache.set("y.pdb/1", b"v", expire=-1, tag="neg1")
    assert store.lookup("y.pdb/1").kind is EntryKind.ABSENT


def _value_file(store: SymbolStore, key: str) -> Path:
    with sqlite3.connect(store.directory / "cache.db") as db:
        (filename,) = db.execute("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchone()
    return store.directory / filename


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_value_is_reported_and_deleted(tmp_path: Path, damage: str) -> None:
    store = SymbolStore(tmp_path / "c", 1 << 20)
    data = os.urandom(8000)
    store.put_index("m/1", data)
    path = _value_file(store, "m/1")
    if damage == "truncate":
        path.write_bytes(data[:4000])
    elif damage == "flip":
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    else:
        path.write_bytes(b"")
    entry = store.lookup("m/1")
    assert entry.kind is EntryKind.CORRUPT
    assert store.lookup("m/1").kind is EntryKind.ABSENT


def test_damage_found_after_a_peer_refilled_keeps_the_fresh_value(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "c", 1 << 20)
    store.put_index("m/1", os.urandom(8000))
    _value_file(store, "m/1").write_bytes(b"cut")
    fresh = os.urandom(8000)
    read_value = store.cache.get

    def read_then_peer_refills(*args: object, **kwargs: object) -> object:
        # this reader has the damaged value in hand when another process stores a fresh one
        store.cache.get = read_value
        value = read_value(*args, **kwargs)
        store.put_index("m/1", fresh)
        return value

    store.cache.get = read_then_peer_refills
    assert store.lookup("m/1").kind is EntryKind.CORRUPT
    entry = store.lookup("m/1")
    assert entry.kind is EntryKind.INDEX and bytes(entry.buffer) == fresh


def test_wrong_tag_is_corrupt(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "c", 1 << 20)
    store.cache.set("m/1", b"x" * 3000, tag="idx1:12:00000000")
    assert store.lookup("m/1").kind is EntryKind.CORRUPT
    assert store.lookup("m/1").kind is EntryKind.ABSENT
    store.cache.set("tiny/1", b"x" * 30, tag="idx1:12:00000000")  # a value kept in its row
    assert store.lookup("tiny/1").kind is EntryKind.CORRUPT
    assert store.lookup("tiny/1").kind is EntryKind.ABSENT


def test_cull_keeps_volume_within_one_entry_of_limit(tmp_path: Path) -> None:
    limit = 300_000
    store = SymbolStore(tmp_path / "c", limit)
    entry_size = 40_000
    evicted = 0
    for n in range(30):
        evicted += store.put_index(f"m{n}/1", os.urandom(entry_size))
        assert store.volume() <= limit
    assert evicted > 0
    # the most recent entries survive
    assert store.lookup("m29/1").kind is EntryKind.INDEX
    assert store.lookup("m0/1").kind is EntryKind.ABSENT


def test_lru_keeps_recently_read_entries(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "c", 250_000)
    for n in range(4):
        store.put_index(f"m{n}/1", os.urandom(40_000))
    store.lookup("m0/1")
    for n in range(4, 8):
        store.put_index(f"m{n}/1", os.urandom(40_000))
        store.lookup("m0/1")
    assert store.lookup("m0/1").kind is EntryKind.INDEX
    assert store.lookup("m1/1").kind is EntryKind.ABSENT


def test_disk_refuses_anything_but_str_keys_and_bytes(tmp_path: Path) -> None:
    disk = BytesOnlyDisk(str(tmp_path))
    with pytest.raises(NotBytesError):
        disk.put(("tuple", "key"))
    with pytest.raises(NotBytesError):
        disk.store({"a": 1}, False)
    with pytest.raises(NotBytesError):
        disk.store(12, False)
    with pytest.raises(NotBytesError):
        disk.fetch(MODE_PICKLE, None, pickle.dumps("x"), False)
    with pytest.raises(NotBytesError):
        disk.get(pickle.dumps("x"), False)
    assert disk.fetch(MODE_RAW, None, sqlite3.Binary(b"ok"), False) == b"ok"


class _Bomb:
    """Unpickling this would create a marker file: proof that something unpickled."""

    marker = ""

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.marker),))


def test_planted_pickle_row_is_never_unpickled(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "c", 1 << 20)
    store.put_index("m/1", os.urandom(3000))
    bomb = _Bomb()
    bomb.marker = str(tmp_path / "unpickled")
    payload = pickle.dumps(bomb)
    with sqlite3.connect(store.directory / "cache.db") as db:
        db.execute(
            "UPDATE Cache SET mode = ?, value = ?, filename = NULL WHERE key = ?",
            (MODE_PICKLE, payload, "m/1"),
        )
    assert store.lookup("m/1").kind is EntryKind.CORRUPT
    assert not (tmp_path / "unpickled").exists()
    assert store.lookup("m/1").kind is EntryKind.ABSENT


def test_nothing_stored_is_a_pickle(tmp_path: Path) -> None:
    store = SymbolStore(tmp_path / "c", 1 << 20)
    store.put_index("a.pdb/1", os.urandom(5000))
    store.put_index("tiny/1", b"small index")
    store.put_negative("b.pdb/2", 60)
    assert store.count_by_kind()["index_entries"] == 2
    assert store.count_by_kind()["negative_entries"] == 1
    assert_no_pickle(store.directory)
    assert index_tag(b"abc").startswith("idx1:3:")
