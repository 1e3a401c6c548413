"""incubloc.processes: tasks over forked processes give what a loop here gives."""

from __future__ import annotations

import os
import sys

import pytest

from incubloc import processes
from incubloc.processes import available_cores, fork_map


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_results_in_item_order_whatever_the_cost_order():
    items = [3, -1, 7, 0, 5, -4]
    expected = [x * x for x in items]
    for workers in (1, 2, 3):
        out = fork_map(lambda x: x * x, items, workers=workers, cost=lambda x: -abs(x))
        assert out == expected


def _slow_pid_and_square(x: int) -> tuple[int, int]:
    import time

    time.sleep(0.1)
    return os.getpid(), x * x


@pytest.mark.skipif(available_cores() < 2 or not processes.can_fork(),
                    reason="needs two cores and fork")
def test_two_workers_are_this_process_and_a_forked_one():
    out = fork_map(_slow_pid_and_square, list(range(8)), workers=2)
    assert [sq for _, sq in out] == [x * x for x in range(8)]
    pids = [pid for pid, _ in out]
    assert len(set(pids)) == 2 and os.getpid() in pids
    # each takes the next task when it is free: about half each
    assert 2 <= pids.count(os.getpid()) <= 6
    # one worker: every task here
    assert {pid for pid, _ in fork_map(_pid_and_square, [1, 2], workers=1)} == {os.getpid()}


@pytest.mark.skipif(available_cores() < 2 or not processes.can_fork(),
                    reason="needs two cores and fork")
def test_the_costliest_tasks_are_handed_out_first():
    # Two workers, four tasks of 0.1 s: the two costliest start together, the two
    # others when those are done (the clock is the system's, shared by processes).
    import time

    def task(x: int) -> float:
        start = time.monotonic()
        time.sleep(0.1)
        return start

    starts = dict(zip([1, 4, 2, 3], fork_map(task, [1, 4, 2, 3], workers=2, cost=float),
                      strict=True))
    assert max(starts[4], starts[3]) < min(starts[1], starts[2])


@pytest.mark.skipif(available_cores() < 2 or not processes.can_fork(),
                    reason="needs two cores and fork")
def test_a_killed_worker_leaves_its_tasks_to_this_process():
    import signal

    def task(x: int) -> tuple[int, int]:
        if x == 3 and os.getpid() != here:
            os.kill(os.getpid(), signal.SIGKILL)  # the forked worker dies on its task
        import time

        time.sleep(0.05)
        return x, x * x

    here = os.getpid()
    assert fork_map(task, list(range(6)), workers=2) == [(x, x * x) for x in range(6)]


@pytest.mark.skipif(available_cores() < 2 or not processes.can_fork(),
                    reason="needs two cores and fork")
def test_a_result_that_cannot_be_sent_back_is_an_error():
    import threading

    def task(x: int) -> object:
        import time

        time.sleep(0.05)
        # a lock cannot be pickled: only a forked worker's result fails
        return threading.Lock() if os.getpid() != here else x

    here = os.getpid()
    with pytest.raises(RuntimeError, match="cannot be sent back"):
        fork_map(task, list(range(6)), workers=2)


def test_an_error_in_a_task_reaches_the_caller():
    def fails(x: int) -> int:
        if x == 2:
            raise ValueError("task 2 failed")
        return x

    with pytest.raises(ValueError, match="task 2 failed"):
        fork_map(fails, [1, 2, 3], workers=2)
    with pytest.raises(ValueError, match="task 2 failed"):  # whichever process ran it
        fork_map(fails, [2, 1, 3], workers=2)


def test_no_fork_inside_qgis(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "qgis.core", types.ModuleType("qgis.core"))
    assert {pid for pid, _ in fork_map(_pid_and_square, [1, 2, 3], workers=2)} == {os.getpid()}


def test_keep_freed_memory_respects_the_users_allocator_settings(monkeypatch):
    from incubloc import processes

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert processes.keep_freed_memory() is False  # the user's setting stands
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setattr(processes.sys, "platform", "win32")
    assert processes.keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_tunes_glibc_in_a_fresh_process():
    # In a child, so that this test process keeps its allocator as it was.
    import subprocess

    code = "from incubloc.processes import keep_freed_memory; print(keep_freed_memory())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.strip()
    import platform

    assert out == str(platform.libc_ver()[0] == "glibc")


def test_the_command_tunes_the_allocator_and_the_collector(monkeypatch):
    import gc

    from incubloc import processes
    from incubloc.shells.cli import main

    calls, thresholds = [], []
    monkeypatch.setattr(processes, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(gc, "set_threshold", lambda *t: thresholds.append(t))
    assert main(["classify"]) == 2  # no input: an error, after the tuning
    assert calls == [1]
    # fewer young-generation collections; the older generations' ratios unchanged
    assert thresholds == [(50_000, *gc.get_threshold()[1:])]


@pytest.mark.skipif(available_cores() < 2 or not processes.can_fork(),
                    reason="needs two cores and fork")
def test_a_task_in_a_forked_worker_may_fork_in_turn():
    import time

    def task(x: int) -> tuple[int, list[int]]:
        time.sleep(0.05)
        return os.getpid(), fork_map(abs, [-x, x, -2 * x], workers=2)

    out = fork_map(task, [1, 2, 3, 4], workers=2)
    assert [r for _, r in out] == [[x, x, 2 * x] for x in (1, 2, 3, 4)]
    assert len({pid for pid, _ in out}) == 2  # some ran in the forked worker


@pytest.mark.skipif(available_cores() < 2 or not processes.can_fork(),
                    reason="needs two cores and fork")
def test_an_error_in_the_forked_worker_comes_with_its_traceback():
    import time

    def fails_there(x: int) -> int:
        time.sleep(0.05)
        if os.getpid() != here:
            raise KeyError(f"item {x}")
        return x

    here = os.getpid()
    with pytest.raises(KeyError, match="item") as info:
        fork_map(fails_there, list(range(6)), workers=2)
    cause = info.value.__cause__
    assert isinstance(cause, processes._RemoteTraceback)
    assert "fails_there" in str(cause) and "KeyError" in str(cause)
