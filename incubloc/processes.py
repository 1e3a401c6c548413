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


def fork_map(func: Callable[[T], Any], items: Sequence[T], *, workers: int = 0,
             cost: Callable[[T], float] | None = None) -> list[Any]:
    """``[func(x) for x in items]``, the tasks spread over this process and forked ones.

    With ``n`` workers, ``n − 1`` processes are forked and this one works too: each
    takes the next task not yet taken until none is left, so that the processes
    finish together. Forked workers inherit the inputs (nothing is pickled but the
    results, sent back as they are made); this process, which already holds every
    page, needs no copy of any.

    Parameters
    ----------
    func : callable
        A task whose result depends only on its item (seeded on its own, no shared
        state): the results are then the same whatever the process or the order.
    items : sequence
    workers : int
        Processes, this one included; 0 uses the available cores, 1 runs every task
        here.
    cost : callable, optional
        Expected cost of an item: the costliest are handed out first, so that the
        workers finish together. The results keep the order of ``items``.

    Returns
    -------
    list
        One result per item, in the order of ``items``.

    Raises
    ------
    Exception
        The first error raised by a task (no further task is started). A forked
        worker that dies (killed) costs nothing but time: its tasks are run here.

    Examples
    --------
    >>> fork_map(abs, [-3, 1, -2], workers=2)
    [3, 1, 2]
    """
    items = list(items)
    n = min(available_cores() if workers == 0 else int(workers), len(items))
    if n < 2 or not can_fork():
        return [func(x) for x in items]
    order = list(range(len(items)))
    if cost is not None:
        order.sort(key=lambda i: -cost(items[i]))
    try:
        shared = _Shared(len(order))
    except OSError as exc:  # no shared semaphores here (a sandbox): in turn
        log.info("tasks run in this process (%s: %s)", type(exc).__name__, exc)
        return [func(x) for x in items]
    done: dict[int, tuple[bool, Any]] = {}
    forked = [_Worker(shared, order, items, func) for _ in range(n - 1)]
    try:
        for w in forked:  # every fork before any thread starts here
            try:
                w.fork()
            except OSError as exc:  # no more processes: this one does the rest
                log.info("fewer workers (%s: %s)", type(exc).__name__, exc)
                break
        forked = [w for w in forked if w.process is not None]
        for w in forked:
            w.receive(done)
        shared.work(order, items, func, done)
        for w in forked:
            w.join()
    finally:
        for w in forked:
            w.stop()
    for i in order:  # errors in the order the tasks were handed out
        if i in done and not done[i][0]:
            raise done[i][1]
    # What a dead worker took and never sent back is done here.
    for i in order:
        if i not in done:
            done[i] = (True, func(items[i]))
    return [done[i][1] for i in range(len(items))]


class _RemoteTraceback(Exception):
    """The traceback, as text, of an error raised by a task in a forked worker of
    :func:`fork_map`; the ``__cause__`` of that error where the caller gets it."""

    def __str__(self) -> str:
        return f"\n\n(in a forked worker)\n{self.args[0]}"


class _Shared:
    """The next task to take and whether a task failed, shared by the processes of
    one :func:`fork_map` (memory inherited through the fork, a lock around it)."""

    def __init__(self, n_tasks: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.n_tasks = n_tasks
        self.lock = ctx.Lock()
        self.next = ctx.RawValue("q", 0)
        self.failed = ctx.RawValue("b", 0)

    def take(self) -> int | None:
        """The position in the hand-out order of the next task, None when done."""
        with self.lock:
            k = self.next.value
            if self.failed.value or k >= self.n_tasks:
                return None
            self.next.value = k + 1
            return k

    def work(self, order: list[int], items: list[Any], func: Callable[[Any], Any],
             out: Any, send: Callable[[int, bool, Any], None] | None = None) -> None:
        """Take and run tasks until none is left; each result goes to ``out``
        (here) or through ``send`` (a forked worker)."""
        while (k := self.take()) is not None:
            i = order[k]
            try:
                result = (True, func(items[i]))
            except Exception as exc:  # handed to the caller of fork_map
                self.failed.value = 1
                result = (False, exc)
            if send is None:
                out[i] = result
            else:
                send(i, *result)


class _Worker:
    """A forked process of :func:`fork_map` and the thread here that receives its
    results as they come (so that it never waits on a full pipe)."""

    def __init__(self, shared: _Shared, order: list[int], items: list[Any],
                 func: Callable[[Any], Any]) -> None:
        self.args = (shared, order, items, func)
        self.process: Any = None
        self.conn: Any = None
        self.thread: Any = None

    def fork(self) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.conn, there = ctx.Pipe(duplex=False)
        # Forked: the task and the items are inherited, not pickled.
        self.process = ctx.Process(target=_work_there, args=(*self.args, there))
        self.process.start()
        there.close()

    def receive(self, done: dict[int, tuple[bool, Any]]) -> None:
        import threading

        self.thread = threading.Thread(target=_receive, args=(self.conn, done), daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.process.join()
        self.thread.join()

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join()


def _work_there(shared: _Shared, order: list[int], items: list[Any],
                func: Callable[[Any], Any], conn: Any) -> None:
    import traceback

    def send(i: int, ok: bool, value: Any) -> None:
        if not ok:  # the error with its traceback here, which pickling would drop
            value = (value, "".join(traceback.format_exception(value)))
        try:
            conn.send((i, ok, value))
        except Exception as exc:  # a result that cannot be pickled: its error instead
            shared.failed.value = 1
            error = RuntimeError(f"task {i}: its result cannot be sent back "
                                 f"({type(exc).__name__}: {exc})")
            conn.send((i, False, (error, "")))

    shared.work(order, items, func, None, send)
    conn.close()


def _receive(conn: Any, done: dict[int, tuple[bool, Any]]) -> None:
    while True:
        try:
            i, ok, value = conn.recv()
        except (EOFError, OSError):  # the worker has ended (or died)
            break
        if not ok:
            value, text = value
            if text:
                value.__cause__ = _RemoteTraceback(text)
        done[i] = (ok, value)
    conn.close()
