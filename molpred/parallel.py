"""Running per-molecule RDKit work on every core: the one process pool of molpred.

:func:`map_ordered` is the chunk executor behind featurization for training, library scoring
and the screening page: it maps a function over chunks in this process or in a pool of worker
processes, keeps a bounded number of chunks in flight (memory does not grow with the input) and
yields results in input order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = [
    "default_workers",
    "torch_section",
    "worker_pool",
    "map_ordered",
    "release_memory",
    "scoring_threads",
    "WorkerDied",
]

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _TorchGuard:
    """No fork while any thread of this process is inside torch.

    A child forked while another thread is inside torch (its thread pools, its allocator) can
    inherit their state half-changed and hang on it for good: seen in the page, where one
    session scores while another trains or explains a prediction. Torch work runs in
    :func:`torch_section` (shared: any number of threads at once); a fork waits until no
    section is open, holding new ones back meanwhile, and gives up after a while (the caller
    then works in this process instead).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._open = 0  # sections open in this process
        self._forking = False
        self._local = threading.local()  # this thread's nesting depth

    @contextmanager
    def section(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                self._cond.wait_for(lambda: not self._forking)
                self._open += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._open -= 1
                    self._cond.notify_all()

    @contextmanager
    def forking(self, wait: float) -> Iterator[bool]:
        """True when this thread may fork now (no section open, none opens until the block
        ends); False after ``wait`` seconds of sections still open, or at once inside one."""
        if getattr(self._local, "depth", 0):
            yield False
            return
        with self._cond:
            self._forking = True
            ok = self._cond.wait_for(lambda: self._open == 0, timeout=wait)
            if not ok:
                self._forking = False
                self._cond.notify_all()
        try:
            yield ok
        finally:
            if ok:
                with self._cond:
                    self._forking = False
                    self._cond.notify_all()


_GUARD = _TorchGuard()
if hasattr(os, "register_at_fork"):  # a child starts with no section open and no fork pending
    os.register_at_fork(after_in_child=_GUARD._reset)

FORK_WAIT = 2.0  # seconds a pool waits for other threads' torch work before working here


def torch_section():
    """A block of torch work: no worker pool is forked while one is open in any thread."""
    return _GUARD.section()


def worker_pool(workers: int, wait: float = FORK_WAIT):
    """A process pool (fork where available: much faster to start; the children featurize, and
    on Linux score with the models they inherit: see :meth:`molpred.predictor.Predictor.stream`),
    or None when other threads' torch work (:func:`torch_section`) outlasts ``wait`` seconds.

    Before forking, every object the parent holds is frozen out of the garbage collector's
    reach: otherwise each collection in a child writes to those objects' headers and, page by
    page, copies the parent's memory into the child (the tree's memory crept up over a long
    library run; flat with the freeze). No collection runs first: garbage frozen with the rest
    is collected in the parent once unfrozen, and a full collection of the page's heap cost
    about 0.3 s at every press of Score."""
    methods = mp.get_all_start_methods()
    fork = "fork" in methods
    # another thread's unfreeze must not land between this freeze and fork
    with _FORKING, _GUARD.forking(wait if fork else 0.0) as free:
        if fork and not free:
            return None
        gc.freeze()
        try:
            context = mp.get_context("fork" if fork else "spawn")
            return context.Pool(workers, initializer=_default_sigterm)
        finally:
            gc.unfreeze()


_FORKING = threading.Lock()


def _default_sigterm() -> None:
    """A worker dies on SIGTERM (the pool's terminate): a forked child inherits its parent's
    Python handler (the page server's), which only runs if the child's Python is free to, and a
    stuck child then kept the server from exiting."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def map_ordered(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int = 1,
    *,
    skip: Callable[[int], bool] | None = None,
) -> Iterator[tuple[int, T, R | None]]:
    """``(index, item, fn(item))`` for every item, in input order.

    With ``workers > 1``, ``fn`` runs in a process pool (here when :func:`worker_pool` finds
    no safe moment to fork) with up to two items per worker in flight; the next item is handed
    to the pool before a result is yielded, so the workers keep busy while the caller uses it.
    ``skip(index)`` true means the caller already has that result (a resumed run): ``fn`` is
    not called and the result is ``None``.
    """
    skip = skip or (lambda _: False)
    pool = worker_pool(workers) if workers > 1 else None
    if pool is None:  # one worker asked for, or no safe moment to fork: here
        for i, item in enumerate(items):
            yield i, item, None if skip(i) else fn(item)
        return
    workers_at_start = _worker_pids(pool)  # before any work: a death is seen however early
    source = enumerate(items)
    pending: deque = deque()

    def submit(entry: tuple[int, T] | None) -> None:
        if entry is not None:
            i, item = entry
            pending.append((i, item, None if skip(i) else pool.apply_async(fn, (item,))))

    finished = False
    try:
        for _ in range(2 * workers):
            submit(next(source, None))
        while pending:
            i, item, job = pending.popleft()
            result = _result(job, pool, workers_at_start) if job is not None else None
            submit(next(source, None))
            yield i, item, result
        finished = True
    finally:
        # every result in: let the workers exit on their own. terminate() kills them wherever
        # they are, and a worker killed holding the pool's queue lock can leave a sibling
        # blocked on it for good (seen as a page server that hung under ten sessions)
        if finished:
            pool.close()
            pool.join()
        else:  # the caller stopped early (an error, a closed generator): stop now
            pool.terminate()


class WorkerDied(RuntimeError):
    """A worker process died with work in flight (killed for memory, a crash in native code)."""


_POLL = 0.5  # seconds between checks that every worker is still alive


def _worker_pids(pool) -> set[int]:
    return {p.pid for p in pool._pool}  # the pool's processes (stable since Python 3.2)


def _result(job, pool, workers: set[int]):
    """``job``'s result, or :class:`WorkerDied` once one of the pool's ``workers`` is gone: the
    pool silently replaces a dead worker, and the task it held would never finish."""
    while True:
        try:
            return job.get(timeout=_POLL)
        except mp.TimeoutError:
            gone = [p for p in pool._pool if p.pid in workers and p.exitcode is not None]
            if gone or not workers <= _worker_pids(pool):
                code = gone[0].exitcode if gone else None
                how = (
                    f"killed by signal {-code}"
                    if code is not None and code < 0
                    else f"exit code {code}"
                    if code is not None
                    else "gone"
                )
                raise WorkerDied(
                    f"a worker process died ({how}; often the system killing it for lack of "
                    "memory, or a crash in native code): its rows were not scored"
                ) from None


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc() if sys.platform.startswith("linux") else None


def release_memory() -> None:
    """Give freed heap pages back to the operating system (glibc only; a no-op elsewhere).

    glibc keeps freed memory for reuse, so a process that featurizes and scores millions of
    molecules chunk after chunk would creep upwards; trimming after each chunk keeps its
    resident size flat (measured in ``benchmarks/library_scoring.py``)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


@contextmanager
def scoring_threads(workers: int) -> Iterator[None]:
    """Where this process scores while ``workers`` processes featurize (spawn, or a GPU: see
    :meth:`molpred.predictor.Predictor.stream`), it uses the cores they leave (at least one)
    instead of spinning threads against them."""
    import torch

    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(max(1, min(threads, default_workers() - workers)))
    try:
        yield
    finally:
        torch.set_num_threads(threads)
