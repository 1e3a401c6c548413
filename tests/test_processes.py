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


@pytest.mark.skipif(available_cores() < 2 or not processes.can_fork(),
                    reason="needs two cores and fork")
def test_tasks_run_in_other_processes_with_two_workers():
    out = fork_map(_pid_and_square, list(range(8)), workers=2)
    assert [sq for _, sq in out] == [x * x for x in range(8)]
    assert os.getpid() not in {pid for pid, _ in out}
    # one worker: every task here
    assert {pid for pid, _ in fork_map(_pid_and_square, [1, 2], workers=1)} == {os.getpid()}


def test_an_error_in_a_task_reaches_the_caller():
    def fails(x: int) -> int:
        if x == 2:
            raise ValueError("task 2 failed")
        return x

    with pytest.raises(ValueError, match="task 2 failed"):
        fork_map(fails, [1, 2, 3], workers=2)
    assert processes._TASK is None  # nothing left behind for a later fork


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
