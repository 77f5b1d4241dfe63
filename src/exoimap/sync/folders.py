"""The folder level of a sync: pair source and target folders, then create, rename, mark
gone or delete target folders (see :func:`exoimap.sync.plan.plan_folders`)."""

from __future__ import annotations

from exoimap.errors import ErrorScope, StoreError
from exoimap.store.base import FolderSyncRecord
from exoimap.sync.plan import FolderPlan, apply_content_renames, match_by_content, plan_folders
from exoimap.sync.run import Run

__all__ = ["FolderPlanner"]


class FolderPlanner:
    """Plans a run's folder changes once, then applies them (or, plan-only, answers what
    the target folders would be)."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._plan = FolderPlan()
        self._existing: set[str] = set()
        #: What the state knew when the plan was made (still true if nothing was applied).
        self.records: list[FolderSyncRecord] = []
        #: Source folders never synced before -> how many messages they hold.
        self.first_sync_sizes: dict[str, int] = {}
        #: Target folders that could not be created, and why (each fails alone).
        self.failed: dict[str, StoreError] = {}

    async def plan(self) -> list[tuple[str, str]]:
        """Plan the folder changes; returns ``(source, target)`` of every folder to sync."""
        run = self._run
        listed = await run.source.list_folders()
        records = self.records = await run.state.folders()
        self._existing = {info.name for info in await run.target.list_folders()}
        known = {r.name for r in records} | self._existing
        synced = {r.name for r in records if r.source_uidvalidity is not None}
        delimiter = run.target.delimiter
        targets = {
            info.name: name
            for info in listed
            if info.selectable and (name := run.policy.target_folder(info, delimiter)) is not None
        }
        # one pipelined STATUS: the UIDVALIDITY of new folders (to spot renames) and the
        # size of every folder that is copied whole (to start the largest first)
        states = await run.source.folder_states(
            [source for source, target in targets.items() if target not in synced]
        )
        uidvalidity = {
            name: state.uidvalidity for name, state in states.items() if targets[name] not in known
        }
        self.first_sync_sizes = {name: state.exists for name, state in states.items()}
        self._plan = plan_folders(
            listed,
            uidvalidity,
            records,
            run.policy,
            target_existing=self._existing,
            target_delimiter=delimiter,
        )
        if self._plan.creates and (self._plan.gone or self._plan.deletes):
            await self._renames_by_content()
        self._report()
        return self._plan.pairs

    def _report(self) -> None:
        report = self._run.report
        report.renamed = list(self._plan.renames)
        report.created = [name for name, _role in self._plan.creates if name not in self._existing]
        if self._run.policy.mirror:
            report.folders_deleted = list(self._plan.deletes)
        else:
            report.folders_gone = list(self._plan.gone)

    def start_rank(self, source_name: str) -> int:
        """Sort key for starting folder syncs: the largest folders copied whole first, so
        that the biggest is not the last to start and the run does not end waiting for it
        alone; the others (small changes, as a rule) after them, in the listed order."""
        return -self.first_sync_sizes.get(source_name, 0)

    def is_new(self, name: str) -> bool:
        """The target folder does not exist yet (before :meth:`apply`)."""
        return name in self._run.report.created

    def current_name(self, name: str) -> str | None:
        """Plan-only: the name the target folder ``name`` has before the planned renames,
        or ``None`` when it is yet to be created."""
        if self.is_new(name):
            return None
        delimiter = self._run.target.delimiter
        for old, new in reversed(self._plan.renames):
            if name == new or name.startswith(new + delimiter):
                name = old + name[len(new) :]
        return name

    @property
    def changes(self) -> bool:
        """Whether :meth:`apply` changes any folder (else :attr:`records` stay true)."""
        plan = self._plan
        return bool(plan.renames or plan.creates or plan.gone or plan.deletes)

    async def apply(self) -> None:
        """Carry out the plan on the target and record it in the state."""
        run, plan = self._run, self._plan
        target, state = run.target, run.state
        for old, new in plan.renames:
            await target.rename_folder(old, new)
            await state.folder_renamed(old, new)
            run.emit("folder_renamed", old, new_name=new)
        existing = {info.name for info in await target.list_folders()}
        for name, role in plan.creates:
            if name not in existing:
                try:
                    await target.create_folder(name, role=role)
                except StoreError as exc:
                    if exc.scope is not ErrorScope.FOLDER:
                        raise
                    self.failed[name] = exc  # that folder's sync reports it
                    continue
                run.emit("folder_created", name)
        for name in plan.gone:
            await state.folder_gone(name, run.clock())
            run.emit("folder_gone", name)
        for name in plan.deletes:
            await target.delete_folder(name)
            await state.folder_deleted(name)
            run.emit("folder_deleted", name)

    async def _renames_by_content(self) -> None:
        """New and vanished folders at once: compare their Message-IDs (a rename that also
        changed UIDVALIDITY). Costs a detailed listing of those folders only."""
        run, plan = self._run, self._plan
        source_of = {target: source for source, target in plan.pairs}
        new_ids: dict[str, set[str]] = {}
        for name, _role in plan.creates:
            if name not in source_of:
                continue
            async with run.source.open_folder(source_of[name]) as folder:
                listing = await folder.list_messages(detail=True)
            new_ids[name] = {m.message_id for m in listing.messages if m.message_id}
        old_ids: dict[str, set[str]] = {}
        for name in [*plan.gone, *plan.deletes]:
            async with run.target.open_folder(name) as folder:
                stored = await run.state.messages(folder, detail=True)
            old_ids[name] = {m.message_id for m in stored if m.message_id and m.gone_at is None}
        apply_content_renames(plan, match_by_content(new_ids, old_ids), run.target.delimiter)
