"""``bench.thread_schedule``: the calling thread's time on a CPU, waiting for one, and its
context switches, measured on real threads that burn, sleep and compete for one core."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from bench.thread_schedule import ThreadSchedule, thread_schedule

BURN_S = 0.4


def _burn(seconds: float) -> None:
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass


def _in_thread(work: Callable[[], object]) -> ThreadSchedule:
    """Run ``work`` in a new thread and return how that thread was scheduled meanwhile."""
    result: list[ThreadSchedule] = []

    def run() -> None:
        before = thread_schedule()
        work()
        result.append(thread_schedule() - before)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0]


def test_a_busy_thread_counts_its_cpu_time() -> None:
    measured = _in_thread(lambda: _burn(BURN_S))
    assert BURN_S - 0.02 <= measured.on_cpu_s < BURN_S + 0.2


def test_a_sleeping_thread_switches_voluntarily_and_stays_off_the_cpu() -> None:
    def sleep_often() -> None:
        for _ in range(20):
            time.sleep(0.005)

    measured = _in_thread(sleep_often)
    assert measured.voluntary_switches >= 20
    assert measured.on_cpu_s < 0.05


def test_a_thread_sharing_its_core_with_a_busy_process_waits_for_the_cpu() -> None:
    core = min(os.sched_getaffinity(0))
    spin = f"import os\nos.sched_setaffinity(0, {{{core}}})\nprint(flush=True)\nwhile True: pass"
    rival = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    try:
        assert rival.stdout is not None
        rival.stdout.readline()  # the rival runs on that core now

        def burn_on_the_same_core() -> None:
            os.sched_setaffinity(0, {core})  # this thread only
            _burn(BURN_S)

        measured = _in_thread(burn_on_the_same_core)
    finally:
        rival.kill()
        rival.wait()
    # two runnable tasks on one core each wait about as long as they run
    assert measured.waiting_for_cpu_s > BURN_S / 4
    assert measured.involuntary_switches > 0


def test_describe_splits_the_wall_time() -> None:
    text = ThreadSchedule(1.0, 0.5, 40, 10).describe(wall_s=2.0)
    assert text == (
        "on a CPU 1.00 s, waiting for a CPU 0.50 s (10.000 ms a switch), blocked 0.50 s; "
        "40 voluntary and 10 involuntary context switches"
    )
