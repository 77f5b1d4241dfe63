"""The audit log on disk: append-only JSON lines, hash-chained, keyed, rotated.

Format
    Files ``audit-000001.jsonl``, ``audit-000002.jsonl``, ... in the audit directory (0700,
    files 0600). One record per line::

        {"seq":7,"time":"...Z","event":"token.requested","outcome":"success","account":"work",
         "actor":{"os_user":"ann","console_user":null},"run":"3f2a...","data":{...},
         "prev":"<hash of record 6>","hash":"<SHA-256 of this line up to prev>","mac":"<HMAC>"}

    ``hash`` is the SHA-256 of the exact bytes of the line with the ``hash`` and ``mac``
    members removed (the body ends at ``"prev":"..."}``), so verifying never re-serialises
    JSON. ``prev`` links each record to the one before it across files: rotation starts a
    new file whose first record points at the last record of the previous file. ``seq``
    counts from 1 over the whole chain. ``mac`` is HMAC-SHA256 of the record hash under the
    audit key (see :mod:`exoimap.auth.audit_key`).

    ``audit.checkpoint`` holds the number and hash of the last record made durable, and the
    file it is in, with an HMAC under the same key. It is replaced (write new, fsync, rename)
    after every fsync'd batch, and created (for record 0) before the first record is written;
    the anchor follows it. A chain sealed by ``exoimap audit recover`` is kept in
    ``segment-NNNN/`` and the new one starts with an ``audit.segment_started`` record linked
    to it (:mod:`exoimap.audit.recover`).

Tamper model (what :func:`exoimap.audit.verify.verify_log` can and cannot tell)
    Without the key, anyone who can write the directory can still be *caught*:

    * editing a record, even recomputing its hash and every later hash (the MACs no longer
      match), inserting, deleting or reordering records (``seq``/``prev`` break);
    * cutting records off the end, or deleting the newest files (the checkpoint names a
      record that is gone), deleting or forging the checkpoint;
    * deleting, emptying or swapping the whole directory, checkpoint included: the anchor
      kept in the vault folder (:mod:`exoimap.audit.anchor`) names a record that is gone;
    * a torn last line (a crash mid-write) is reported as such, never taken as a record.

    It cannot detect:

    * anything done by someone who holds the audit key (they can write a new valid chain);
    * rolling back the directory *and* the anchor together to an older copy. Export the
      log (``exoimap audit export``) to another system to guard against that;
    * events that were still buffered in memory when the process died (the writer fsyncs in
      batches; failures and denials are flushed at once).

Several processes may append to one log: each batch is written under an exclusive
``flock`` on ``audit.lock``, and a writer re-reads the tail whenever another process wrote.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from exoimap.audit.anchor import Anchor, read_anchor, write_anchor
from exoimap.audit.atomic import replace_file
from exoimap.audit.events import AuditEvent, AuditRecovered, AuditResetDetected
from exoimap.errors import AuditChainBroken, DiskFull, StoreUnavailable, disk_of
from exoimap.secrets import Secret

__all__ = [
    "CHECKPOINT_NAME",
    "GENESIS_HASH",
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "Entry",
    "audit_files",
    "parse_line",
    "read_checkpoint",
    "read_lines",
    "read_records",
]

_logger = logging.getLogger(__name__)

GENESIS_HASH: Final = "0" * 64
CHECKPOINT_NAME: Final = "audit.checkpoint"
LOCK_NAME: Final = "audit.lock"
_FILE_RE: Final = re.compile(r"audit-(\d{6,})\.jsonl")
#: A folder holding a chain sealed by a recovery (:mod:`exoimap.audit.recover`).
SEGMENT_RE: Final = re.compile(r"segment-(\d{4,})")
# ',"hash":"<64 hex>","mac":"<64 hex>"}' : a fixed-length tail after the hashed body.
_SUFFIX_LEN: Final = len(',"hash":"') + 64 + len('","mac":"') + 64 + len('"}')
_RECORD_TAG: Final = b"exoimap-audit-record\x00"
_CHECKPOINT_TAG: Final = b"exoimap-audit-checkpoint\x00"
#: Where every refusal to append points: investigate, then keep the log and go on.
_WHAT_TO_DO: Final = (
    "run `exoimap audit verify`, then `exoimap audit recover --reason TEXT` to keep this "
    "log as it is and go on with a new segment linked to it"
)


def file_name(index: int) -> str:
    return f"audit-{index:06d}.jsonl"


def audit_files(directory: Path) -> list[tuple[int, Path]]:
    """The log files in chain order (by their number)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = _FILE_RE.fullmatch(name)
        if match:
            found.append((int(match.group(1)), directory / name))
    return sorted(found)


def record_mac(key: bytes, record_hash: str) -> str:
    return hmac.digest(key, _RECORD_TAG + record_hash.encode("ascii"), "sha256").hex()


def checkpoint_mac(key: bytes, seq: int, record_hash: str, file: str) -> str:
    message = _CHECKPOINT_TAG + f"{seq}\x00{record_hash}\x00{file}".encode()
    return hmac.digest(key, message, "sha256").hex()


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRecord:
    """One parsed record. ``hash_ok`` says whether the line matches its own hash."""

    seq: int
    time: str
    event: str
    outcome: str
    account: str | None
    actor: dict[str, Any]
    run: str
    data: dict[str, Any]
    prev: str
    hash: str
    mac: str
    hash_ok: bool

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "event": self.event,
            "outcome": self.outcome,
            "account": self.account,
            "actor": self.actor,
            "run": self.run,
            "data": self.data,
            "prev": self.prev,
            "hash": self.hash,
        }


def parse_line(line: bytes) -> AuditRecord | None:
    """Parse one line (without its newline); ``None`` if it is not a well-formed record."""
    if len(line) <= _SUFFIX_LEN or not line.endswith(b'"}'):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    try:
        seq, prev, rec_hash, mac = obj["seq"], obj["prev"], obj["hash"], obj["mac"]
        if not (isinstance(seq, int) and isinstance(prev, str) and isinstance(rec_hash, str)):
            return None
        body = line[:-_SUFFIX_LEN] + b"}"
        hash_ok = hmac.compare_digest(hashlib.sha256(body).hexdigest(), rec_hash)
        return AuditRecord(
            seq=seq,
            time=str(obj["time"]),
            event=str(obj["event"]),
            outcome=str(obj["outcome"]),
            account=obj.get("account"),
            actor=dict(obj.get("actor") or {}),
            run=str(obj.get("run", "")),
            data=dict(obj.get("data") or {}),
            prev=prev,
            hash=rec_hash,
            mac=str(mac),
            hash_ok=hash_ok,
        )
    except (KeyError, TypeError, ValueError):
        return None


def iter_lines(path: Path) -> Iterator[tuple[bytes, bool]]:
    """Each line of a file without its newline, and whether it had one."""
    with path.open("rb") as handle:
        for raw in handle:
            if raw.endswith(b"\n"):
                yield raw[:-1], True
            else:
                yield raw, False


def sealed_segments(directory: Path) -> list[Path]:
    """The folders of chains sealed by ``exoimap audit recover``, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), name) for name in names if (m := SEGMENT_RE.fullmatch(name))]
    return [directory / name for _, name in sorted(found)]


def read_lines(directory: Path) -> Iterator[tuple[bytes, AuditRecord]]:
    """Each well-formed record with its exact line, skipping torn or garbled lines (no
    verification: see ``verify_log``): the sealed segments' first, then the live chain."""
    folders = [*sealed_segments(directory), directory]
    for path in (path for folder in folders for _, path in audit_files(folder)):
        try:
            for line, complete in iter_lines(path):
                record = parse_line(line) if complete else None
                if record is not None:
                    yield line, record
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot read {path}: {exc.strerror or exc}", retryable=False
            ) from None


def read_records(directory: Path) -> Iterator[AuditRecord]:
    """Every well-formed record in chain order (no verification; see ``verify_log``)."""
    for _, record in read_lines(directory):
        yield record


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    file: str
    mac: str

    def valid(self, key: bytes) -> bool:
        expected = checkpoint_mac(key, self.seq, self.hash, self.file)
        return hmac.compare_digest(expected, self.mac)


def read_checkpoint(directory: Path) -> Checkpoint | None:
    """The checkpoint, ``None`` when absent; raises ``AuditChainBroken`` if unreadable."""
    try:
        raw = (directory / CHECKPOINT_NAME).read_bytes()
    except FileNotFoundError:
        return None
    try:
        obj = json.loads(raw)
        return Checkpoint(
            seq=int(obj["seq"]), hash=str(obj["hash"]), file=str(obj["file"]), mac=str(obj["mac"])
        )
    except (ValueError, KeyError, TypeError):
        raise AuditChainBroken(
            "the audit checkpoint is unreadable: it was damaged or replaced", kind="checkpoint"
        ) from None


# --- writing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """An event waiting to be written, with the envelope fixed when it was emitted."""

    time: str
    event: AuditEvent
    os_user: str
    console_user: str | None
    run: str


@dataclass
class _Tail:
    index: int  # number of the file the next record goes to
    size: int
    inode: int
    seq: int
    hash: str


def _encode(seq: int, entry: Entry, prev: str, key: bytes) -> tuple[bytes, str]:
    event = entry.event
    body = {
        "seq": seq,
        "time": entry.time,
        "event": event.name,
        "outcome": event.outcome,
        "account": event.account,
        "actor": {"os_user": entry.os_user, "console_user": entry.console_user},
        "run": entry.run,
        "data": event.data(),
        "prev": prev,
    }
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    digest = hashlib.sha256(text).hexdigest()
    mac = record_mac(key, digest)
    line = text[:-1] + f',"hash":"{digest}","mac":"{mac}"}}\n'.encode("ascii")
    return line, digest


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc: OSError, what: str, directory: Path) -> Exception:
    if exc.errno == errno.ENOSPC:
        return DiskFull(
            f"no space left on {disk_of(directory)} while {what}; everything stored before "
            "is intact (the audit log kept every earlier record). Free some space and run again."
        )
    return StoreUnavailable(f"audit log: {what} failed: {exc.strerror}", retryable=False)


def _read_last_line(path: Path) -> tuple[bytes | None, bytes]:
    """The last complete line of a file (without newline) and any torn bytes after it."""
    with path.open("rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        tail = b""
        while position > 0 and tail.count(b"\n") < 2:
            step = min(8192, position)
            position -= step
            handle.seek(position)
            tail = handle.read(step) + tail
    cut = tail.rfind(b"\n")
    torn = tail[cut + 1 :]
    if cut < 0:
        return None, torn
    complete = tail[:cut]
    last = complete[complete.rfind(b"\n") + 1 :]
    return (last or None), torn


def _anchor_problem(
    path: Path | None, key: bytes, files: list[tuple[int, Path]], seq: int, digest: str
) -> tuple[str | None, Anchor | None]:
    """What is wrong between the chain (ending at ``seq`` with ``digest``) and the anchor."""
    if path is None:
        return None, None
    try:
        anchor = read_anchor(path)
    except AuditChainBroken as exc:
        return str(exc), None
    if anchor is None:
        return None, None
    if not anchor.valid(key):
        return "the audit anchor is not authenticated by the key", anchor
    if anchor.seq > seq:
        return f"the anchor names record {anchor.seq}, the log ends at record {seq}", anchor
    found = digest if anchor.seq == seq else hash_of_record(files, anchor.seq, key)
    if found != anchor.hash:
        return f"record {anchor.seq} is not the one the anchor names", anchor
    return None, anchor


def hash_of_record(files: list[tuple[int, Path]], seq: int, key: bytes | None) -> str | None:
    """The hash of the authentic record number ``seq`` (genesis for 0), or None."""
    if seq == 0:
        return GENESIS_HASH
    for _, path in files:
        for line, complete in iter_lines(path):
            record = parse_line(line) if complete else None
            if record is None or record.seq != seq or not record.hash_ok:
                continue
            if key is None or hmac.compare_digest(record.mac, record_mac(key, record.hash)):
                return record.hash
    return None


def _chain_end(files: list[tuple[int, Path]], key: bytes) -> tuple[int, str, bytes]:
    """Where the chain ends: the last complete record's number and hash (0 and the genesis
    hash for none), and the torn bytes after it in the newest file. The record must verify."""
    last, torn = _read_last_line(files[-1][1])
    if last is None:  # an empty newest file: the chain ends in the one before
        for _, earlier in reversed(files[:-1]):
            last, _ = _read_last_line(earlier)
            if last is not None:
                break
    if last is None:
        return 0, GENESIS_HASH, torn
    record = parse_line(last)
    mac_ok = record is not None and hmac.compare_digest(record.mac, record_mac(key, record.hash))
    if record is None or not record.hash_ok or not mac_ok:
        raise AuditChainBroken(
            "the last audit record does not verify; " + _WHAT_TO_DO,
            kind="modified",
        )
    return record.seq, record.hash, torn


class AuditLog:
    """Appends batches of entries to the chain. Thread- and process-safe."""

    def __init__(
        self,
        directory: Path,
        key: Secret[bytes],
        *,
        max_file_bytes: int = 64 * 1024 * 1024,
        run: str = "",
        os_user: str = "",
        anchor: Path | None = None,
        check_tail: bool = True,
    ) -> None:
        """``anchor``: where the anchor is kept (see :mod:`exoimap.audit.anchor`); checked
        whenever the tail is read, replaced after every checkpoint. ``check_tail=False``
        only for :func:`exoimap.audit.recover.recover_log`, which opens a broken log."""
        if not isinstance(key, Secret):
            raise TypeError("the audit key must be a Secret[bytes]")
        self.directory = directory
        self.anchor = anchor
        # The envelope of records the log writes on its own (a torn-write recovery note).
        self.run = run
        self.os_user = os_user
        self._key = key
        self.max_file_bytes = max_file_bytes
        self._mutex = threading.Lock()
        self._tail: _Tail | None = None
        #: How many entries of the last ``append`` reached the disk (all of them unless it
        #: raised part-way through a rotation), so a retry does not write them twice.
        self.durable_in_last_append = 0
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
            self._lock_fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise _os_error(exc, f"opening {directory}", directory) from None
        if not check_tail:
            return
        # Check the tail now, so a broken log stops a command before it does any work.
        with self._locked():
            try:
                self._load_tail()
            except OSError as exc:
                raise _os_error(exc, "reading the end of the audit log", self.directory) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log's lock (against every writer, in any process) for the block."""
        with self._locked():
            yield

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # The tail: where the chain ends, checked against the checkpoint.

    def _current_tail(self) -> _Tail:
        files = audit_files(self.directory)
        cached = self._tail
        if cached is not None and files and files[-1][0] == cached.index:
            st = files[-1][1].stat()
            if st.st_ino == cached.inode and st.st_size == cached.size:
                return cached
        return self._load_tail()

    def _load_tail(self) -> _Tail:
        key = self._key.reveal()
        checkpoint = read_checkpoint(self.directory)
        files = audit_files(self.directory)
        if not files:
            if checkpoint is not None and checkpoint.seq > 0:
                raise AuditChainBroken(
                    f"the audit files are gone but the checkpoint records {checkpoint.seq} "
                    "records; " + _WHAT_TO_DO,
                    record=1,
                    kind="truncated",
                )
            if checkpoint is None:
                self._write_checkpoint(0, GENESIS_HASH, "")
            self._tail = _Tail(1, 0, 0, 0, GENESIS_HASH)
            return self._check_anchor(files, key)
        if checkpoint is None:
            raise AuditChainBroken(
                "the audit checkpoint is missing; " + _WHAT_TO_DO, kind="checkpoint"
            )
        if not checkpoint.valid(key):
            raise AuditChainBroken(
                "the audit checkpoint does not authenticate; " + _WHAT_TO_DO,
                kind="checkpoint",
            )
        index, path = files[-1]
        seq, digest, torn = _chain_end(files, key)
        if seq < checkpoint.seq or (seq == checkpoint.seq and digest != checkpoint.hash):
            kind = "truncated" if seq < checkpoint.seq else "modified"
            raise AuditChainBroken(
                f"the audit log ends at record {seq} but its checkpoint records "
                f"{checkpoint.seq}; " + _WHAT_TO_DO,
                record=seq + 1 if kind == "truncated" else seq,
                kind=kind,
            )
        # Only a log that checks out up to its last complete line is repaired: a torn line
        # is moved aside (never deleted) and the move is recorded in the chain.
        recovery = self._set_aside_torn(path, torn) if torn else None
        st = path.stat()
        self._tail = _Tail(index, st.st_size, st.st_ino, seq, digest)
        if recovery is not None:
            self._append_locked([self._own_entry(recovery)], key)
        return self._check_anchor(files, key)

    def _own_entry(self, event: AuditEvent) -> Entry:
        """An entry for a record the log writes about itself."""
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return Entry(now, event, self.os_user, None, self.run)

    def _check_anchor(self, files: list[tuple[int, Path]], key: bytes) -> _Tail:
        """Compare the end of the chain with the anchor in the vault. A mismatch (the folder
        deleted, cut or swapped) is written into the chain as the next record and warned
        about: never silently accepted, but never a reason to stop every sync."""
        assert self._tail is not None
        problem, anchor = _anchor_problem(self.anchor, key, files, self._tail.seq, self._tail.hash)
        if problem is None:
            return self._tail
        event = AuditResetDetected(
            anchor_seq=anchor.seq if anchor else 0,
            anchor_hash=anchor.hash if anchor else "",
            log_end=self._tail.seq,
            problem=problem,
        )
        self._append_locked([self._own_entry(event)], key)
        _logger.warning(
            "the audit log was reset, cut or replaced (%s); this is now recorded in the log. "
            "Run `exoimap audit verify`, restore the audit folder from a backup if you have "
            "one, then `exoimap audit recover --reason TEXT` to acknowledge it",
            problem,
        )
        return self._tail

    def _set_aside_torn(self, path: Path, torn: bytes) -> AuditRecovered:
        """Move a torn last line to ``<file>.torn-N``; the caller notes it in the chain."""
        size = path.stat().st_size
        n = 1
        while (aside := path.with_name(f"{path.name}.torn-{n}")).exists():
            n += 1
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, torn)
            os.fsync(fd)
        finally:
            os.close(fd)
        with path.open("r+b") as handle:
            handle.truncate(size - len(torn))
            os.fsync(handle.fileno())
        _fsync_dir(self.directory)
        return AuditRecovered(
            torn_bytes=len(torn),
            torn_sha256=hashlib.sha256(torn).hexdigest(),
            set_aside=aside.name,
            file=path.name,
        )

    # Appending.

    def append(self, entries: Sequence[Entry]) -> int:
        """Write ``entries`` durably (one fsync per file touched); return the last seq."""
        if not entries:
            return self._tail.seq if self._tail else 0
        with self._locked():
            self.durable_in_last_append = 0
            try:
                self._current_tail()
            except OSError as exc:
                raise _os_error(exc, "reading the end of the audit log", self.directory) from None
            return self._append_locked(entries, self._key.reveal())

    def _append_locked(self, entries: Sequence[Entry], key: bytes) -> int:
        tail = self._tail or self._load_tail()
        seq, prev = tail.seq, tail.hash
        index, size = tail.index, tail.size
        chunk: list[bytes] = []
        chunk_bytes = 0
        self.durable_in_last_append = 0
        for entry in entries:
            seq += 1
            line, prev = _encode(seq, entry, prev, key)
            if size + chunk_bytes > 0 and size + chunk_bytes + len(line) > self.max_file_bytes:
                if chunk:
                    self._write_chunk(index, chunk)
                    self.durable_in_last_append += len(chunk)
                    self._tail = None  # if the next file fails, reload the tail from disk
                index, size, chunk, chunk_bytes = index + 1, 0, [], 0
            chunk.append(line)
            chunk_bytes += len(line)
        inode = self._write_chunk(index, chunk)
        self.durable_in_last_append += len(chunk)
        size += chunk_bytes
        self._tail = _Tail(index, size, inode, seq, prev)
        try:
            self._write_checkpoint(seq, prev, file_name(index))
            self._write_anchor(seq, prev)
        except (DiskFull, StoreUnavailable) as exc:
            # The records are durable and carry their MACs: raising would make the caller
            # write them twice. A lagging checkpoint only narrows what a cut can be caught
            # at, and the next batch tries again.
            _logger.warning("audit checkpoint not updated (records are safe): %s", exc)
        return seq

    def _write_chunk(self, index: int, lines: list[bytes]) -> int:
        path = self.directory / file_name(index)
        try:
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                data = memoryview(b"".join(lines))
                while data:
                    written = os.write(fd, data)
                    data = data[written:]
                os.fsync(fd)
                inode = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.directory)
            return inode
        except OSError as exc:
            raise _os_error(exc, f"writing {path.name}", self.directory) from None

    def start_segment(self, event: AuditEvent, after_seq: int, after_hash: str) -> int:
        """Write ``event`` as the first record of a new segment, linked to record
        ``after_seq`` (hash ``after_hash``) of the one sealed before it. The folder must
        hold no log file; the caller holds :meth:`locked`."""
        if audit_files(self.directory):
            raise AuditChainBroken("a new segment starts only in an empty folder", kind="segment")
        self._tail = _Tail(1, 0, 0, after_seq, after_hash)
        return self._append_locked([self._own_entry(event)], self._key.reveal())

    def _write_anchor(self, seq: int, record_hash: str) -> None:
        if self.anchor is None:
            return
        try:
            write_anchor(self.anchor, self._key.reveal(), seq, record_hash)
        except OSError as exc:
            raise _os_error(exc, "writing the audit anchor", self.directory) from None

    def _write_checkpoint(self, seq: int, record_hash: str, file: str) -> None:
        mac = checkpoint_mac(self._key.reveal(), seq, record_hash, file)
        text = json.dumps({"seq": seq, "hash": record_hash, "file": file, "mac": mac})
        try:
            replace_file(self.directory / CHECKPOINT_NAME, text.encode("ascii") + b"\n")
        except OSError as exc:
            raise _os_error(exc, "writing the audit checkpoint", self.directory) from None
