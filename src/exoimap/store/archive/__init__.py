"""The local archive: Maildir++ files (byte-exact) plus an SQLite index.

Layout of an archive directory::

    <root>/maildir/            the Maildir++ tree (open it with Dovecot, mutt, notmuch)
        cur/ new/ tmp/         INBOX
        .Sub.Folder/           other folders (names: see exoimap.store.archive.files)
    <root>/index.sqlite        the index (WAL): folders and messages
    <root>/journal/            write-ahead records of operations in flight
    <root>/runs/               start / finish records of sync runs
    <root>/damaged/            damaged index files kept aside after a rebuild
    <root>/lock                held (flock) by the process using the archive

Dovecot (checked with 2.3.19) serves the Maildir++ tree as it is, flags and sizes
included; with folder names holding ``.``, ``\\`` or a leading ``~`` it needs::

    mail_location = maildir:<root>/maildir
    mail_plugins = $mail_plugins listescape
    namespace inbox {
      inbox = yes
      separator = /
    }

Every message file holds exactly the bytes of ``BODY[]``; its SHA-256, size, Message-ID,
internal date (also the file's mtime), flags (also in the name, ``:2,FRS``), where it came
from (``origin``: source UIDVALIDITY and UID) and whether it was seen deleted on the source
(``gone_at``) are in the index. The archive has its own UIDVALIDITY and UIDs, so it is a
:class:`~exoimap.store.base.Store` like any other; :meth:`ArchiveStore.sync_state` gives the
:class:`~exoimap.store.base.SyncState` kept in its index, and its folders implement
:class:`~exoimap.store.base.ContentMatching` (``append_matching``).

Crash safety (group commit): a batch of appended messages is streamed into ``tmp/``,
flushed (fsync from a thread pool, or one ``syncfs``), described in a journal record
(written atomically and flushed), renamed into ``cur/``, the directory flushed, and then the
index is updated in ONE transaction. Flag changes, expunges, renames and deletes are
journaled the same way. On open, leftover journal records are rolled forward (files that
reached ``tmp/`` or ``cur/`` are adopted after their SHA-256 is checked), then ``tmp/`` is
emptied. A damaged index is set aside and rebuilt from the files.

Modules, each with one job (none imports this package or one that imports it back):

``files``
    Maildir++ names, the tree's file operations, durable writes, the lock.
``index``
    All the SQL; the one place ``sqlite3`` errors become store errors.
``worker``
    The one thread per open archive that runs its SQLite and file work; the place
    ``OSError`` becomes a store error.
``writer``
    The thread that writes and hashes message bodies during an append.
``journal``
    Journal records, applied right away and rolled forward after a crash.
``repair``
    Opening the index, rebuilding a damaged one, checking the files against it.
``append``
    The group commit of appended messages.
``stamps``
    Files stamps: knowing without a listing that no file was touched.
``runs``
    The run journal (``runs/``).
``holds``
    Legal holds (``holds.json``): while one is active nothing is deleted.
``state``
    The archive's SyncState.
``store``
    :class:`ArchiveStore` and :class:`ArchiveFolder`.
"""

from exoimap.store.archive.append import Writer
from exoimap.store.archive.holds import ArchiveHeld, Hold, active_holds, place_hold, release_hold
from exoimap.store.archive.index import FolderRow, IndexStamp
from exoimap.store.archive.journal import CrashHook
from exoimap.store.archive.repair import FileReport
from exoimap.store.archive.runs import RunJournal
from exoimap.store.archive.state import ArchiveSyncState
from exoimap.store.archive.store import ArchiveFolder, ArchiveStore

__all__ = [
    "ArchiveFolder",
    "ArchiveHeld",
    "ArchiveStore",
    "ArchiveSyncState",
    "CrashHook",
    "FileReport",
    "FolderRow",
    "Hold",
    "IndexStamp",
    "RunJournal",
    "Writer",
    "active_holds",
    "place_hold",
    "release_hold",
]
