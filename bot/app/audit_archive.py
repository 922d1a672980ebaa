"""The audit log's archive: old ``audit_log`` rows as compressed JSON lines under ``[retention] archive_dir``.

Why files and not an ``audit_log_archive`` table: the point of archiving is that the database stops growing
with the audit trail (issue 16 #12). A second table in the same database would move the rows, not bound
them; gzip'd JSON lines are ~10x smaller, sit beside the media store in the data directory, can be shipped
to cold storage with ordinary tools, and are read back with ``zcat | jq``.

One file per archived batch, named after the batch's first row id (``audit_log/000000001234.jsonl.gz``),
written to a temporary name, flushed to disk and renamed before the batch's rows are deleted from the
database. A crash between the rename and the delete leaves the rows in the database; the next run archives
the same oldest rows again under the same name, so the file is replaced, never duplicated, and nothing is
ever in neither place. An erasure (``bot/app/erase.py``) rewrites the files that hold a person's rows the
same way (temporary file, rename), so a row is pseudonymised in the archive too.

File I/O blocks, so callers run these functions in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

AuditRecord = dict[str, Any]
"""``{"id", "at" (ISO 8601, UTC), "actor_id", "action", "entity", "entity_id", "detail"}``."""

SUBDIR = "audit_log"


def record(
    row_id: int,
    at: datetime,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: int | None,
    detail: dict[str, Any],
) -> AuditRecord:
    return {
        "id": row_id,
        "at": at.isoformat(),
        "actor_id": actor_id,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "detail": detail,
    }


def archive_root(base: Path) -> Path:
    return Path(base) / SUBDIR


def write_batch(base: Path, records: list[AuditRecord]) -> Path:
    """Write one batch durably (temporary file, fsync, rename, fsync of the directory); returns its path."""
    if not records:
        raise ValueError("nothing to archive")
    root = archive_root(base)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{int(records[0]['id']):012d}.jsonl.gz"
    _write_atomic(path, records)
    return path


def _write_atomic(path: Path, records: list[AuditRecord]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            for rec in records:
                gz.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
                gz.write(b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def files(base: Path) -> list[Path]:
    root = archive_root(base)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.endswith(".jsonl.gz") and not p.name.startswith("."))


def read_file(path: Path) -> list[AuditRecord]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_all(base: Path) -> Iterator[AuditRecord]:
    for path in files(base):
        yield from read_file(path)


def rewrite(base: Path, change: Callable[[AuditRecord], AuditRecord | None]) -> int:
    """Apply ``change`` to every archived record (``None`` = leave it as it is); a file in which anything
    changed is rewritten atomically. Returns the number of records changed."""
    changed = 0
    for path in files(base):
        records = read_file(path)
        out: list[AuditRecord] = []
        touched = 0
        for rec in records:
            new = change(rec)
            if new is not None and new != rec:
                touched += 1
                out.append(new)
            else:
                out.append(rec)
        if touched:
            _write_atomic(path, out)
            changed += touched
    return changed


def count(base: Path, match: Callable[[AuditRecord], bool]) -> int:
    return sum(1 for rec in read_all(base) if match(rec))
