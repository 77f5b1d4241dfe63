"""How the kernel scheduled the calling thread: time on a CPU, time runnable but waiting
for one, and how often it gave up the CPU, from ``/proc/thread-self``.

A backup's event loop is one thread that everything waits for, so its wall time splits
into what it ran, what it waited for a core after being woken (``schedstat``'s run-queue
time: on a virtual machine every wake-up of an idle vCPU adds to it), and the rest, when
it was blocked (on the network, the GIL or the disk). Take :func:`thread_schedule` before
and after, in the same thread, and subtract. Linux only (the kernel's ``schedstat``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ThreadSchedule", "thread_schedule"]

_SELF = Path("/proc/thread-self")


@dataclass(frozen=True)
class ThreadSchedule:
    on_cpu_s: float
    #: runnable (woken, or preempted) but not running
    waiting_for_cpu_s: float
    #: the thread blocked: a wait for data, a lock (the GIL), a sleep
    voluntary_switches: int
    #: the kernel took the CPU away
    involuntary_switches: int

    def __sub__(self, earlier: ThreadSchedule) -> ThreadSchedule:
        return ThreadSchedule(
            self.on_cpu_s - earlier.on_cpu_s,
            self.waiting_for_cpu_s - earlier.waiting_for_cpu_s,
            self.voluntary_switches - earlier.voluntary_switches,
            self.involuntary_switches - earlier.involuntary_switches,
        )

    def describe(self, wall_s: float) -> str:
        """One line for a report; ``blocked`` is what is left of ``wall_s`` (the thread was
        neither running nor runnable: waiting for data, the GIL, the disk)."""
        blocked = max(0.0, wall_s - self.on_cpu_s - self.waiting_for_cpu_s)
        switches = self.voluntary_switches + self.involuntary_switches
        per_switch_ms = 1000 * self.waiting_for_cpu_s / max(1, switches)
        return (
            f"on a CPU {self.on_cpu_s:.2f} s, waiting for a CPU {self.waiting_for_cpu_s:.2f} s "
            f"({per_switch_ms:.3f} ms a switch), blocked {blocked:.2f} s; "
            f"{self.voluntary_switches} voluntary and {self.involuntary_switches} "
            "involuntary context switches"
        )


def thread_schedule() -> ThreadSchedule:
    """The calling thread's totals since it started."""
    on_cpu_ns, waiting_ns, _slices = (int(x) for x in (_SELF / "schedstat").read_text().split())
    switches: dict[str, int] = {}
    for line in (_SELF / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.endswith("ctxt_switches"):
            switches[key] = int(value)
    return ThreadSchedule(
        on_cpu_ns / 1e9,
        waiting_ns / 1e9,
        switches["voluntary_ctxt_switches"],
        switches["nonvoluntary_ctxt_switches"],
    )
