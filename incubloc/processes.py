"""Independent tasks over forked processes, when there are cores to run them.

A national study tests hundreds of city windows, each with its own Monte-Carlo
simulations; the tasks share nothing and are seeded each on its own, so they can
run in any order and in any process with the same results. On Linux the worker
processes are forked: they inherit the inputs (nothing is pickled but the results)
and the modules already imported. Elsewhere, with one core, or inside QGIS (no
forking a Qt application) the tasks run here, one after the other.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["available_cores", "can_fork", "fork_map", "keep_freed_memory"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# The task of the running fork_map, inherited by its forked workers (not pickled).
_TASK: Callable[[int], Any] | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it).

    Examples
    --------
    >>> available_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Whether work can go to forked processes here: Linux with the ``fork`` start
    method, and not inside QGIS (no forking a Qt application).

    Examples
    --------
    >>> isinstance(can_fork(), bool)
    True
    """
    import multiprocessing

    return (sys.platform.startswith("linux") and "qgis.core" not in sys.modules
            and "fork" in multiprocessing.get_all_start_methods())


#: glibc's mallopt parameters (malloc.h) and the values incubloc's command sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_BYTES, _MMAP_BYTES = 512 * 2**20, 64 * 2**20


def keep_freed_memory() -> bool:
    """Let glibc's allocator reuse freed blocks of up to 64 MB instead of unmapping them.

    By default glibc maps each large block afresh (above a threshold that adapts up
    to 32 MB) and gives it back to the system when it is freed, and it trims the
    free top of its heap; the next array then faults its pages in again, one per
    4 kB. A study makes and drops many such arrays: the Nanjing report spent about a
    tenth of its CPU time in the kernel doing this. With blocks of up to 64 MB served
    from the heap, and up to 512 MB of free heap kept, the pages are reused. The setting lasts for this process and the processes it forks. Only the
    ``incubloc`` command calls this (a library should not tune its host's allocator);
    it does nothing where ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` is
    already set, or without glibc.

    Returns
    -------
    bool
        Whether the allocator was tuned.

    Examples
    --------
    >>> isinstance(keep_freed_memory(), bool)
    True
    """
    if not sys.platform.startswith("linux") or any(
            v in os.environ for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES)
                and mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES))


def _run(i: int) -> Any:
    assert _TASK is not None
    return _TASK(i)


def fork_map(func: Callable[[T], Any], items: Sequence[T], *, workers: int = 0,
             cost: Callable[[T], float] | None = None) -> list[Any]:
    """``[func(x) for x in items]``, the tasks spread over forked processes.

    Parameters
    ----------
    func : callable
        A task whose result depends only on its item (seeded on its own, no shared
        state): the results are then the same whatever the process or the order.
    items : sequence
    workers : int
        Processes; 0 uses the available cores, 1 runs every task here.
    cost : callable, optional
        Expected cost of an item: the costliest are handed out first, so that the
        workers finish together. The results keep the order of ``items``.

    Returns
    -------
    list
        One result per item, in the order of ``items``.

    Examples
    --------
    >>> fork_map(abs, [-3, 1, -2], workers=2)
    [3, 1, 2]
    """
    global _TASK
    items = list(items)
    n = min(available_cores() if workers == 0 else int(workers), len(items))
    if n < 2 or not can_fork():
        return [func(x) for x in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    order = list(range(len(items)))
    if cost is not None:
        order.sort(key=lambda i: -cost(items[i]))
    _TASK = lambda i: func(items[i])  # noqa: E731 -- inherited by the forked workers
    try:
        with ProcessPoolExecutor(max_workers=n,
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            done = dict(zip(order, pool.map(_run, order), strict=True))
    except (OSError, BrokenProcessPool) as exc:  # no processes here (a sandbox): in turn
        log.info("tasks run in this process (%s: %s)", type(exc).__name__, exc)
        return [func(x) for x in items]
    finally:
        _TASK = None
    return [done[i] for i in range(len(items))]
