"""``dlbook run`` and ``dlbook sweep``: execute chapters in fresh kernels; report time, memory, results.

Each job (a chapter, optionally with a seed) runs in its own worker process with its own kernel;
up to ``jobs`` workers run at once, each kernel limited to a few threads so that parallel chapters
do not oversubscribe the CPU. The book's own run writes the executed notebook back, atomically and
only if every cell ran; a run with a seed (``--seed``, ``dlbook sweep``) writes nothing but its
result.

Limits: a per-cell and a per-chapter time limit and a memory limit; the worker kills its kernel
when one is hit and the failure says which. Ctrl-C stops everything: queued jobs are not started,
running kernels are stopped, finished results are kept.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import queue
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import psutil

from dlbook.engine.chapters import Chapter, DlbookError, source_location
from dlbook.engine.sync import code_fingerprint, drift, read_notebook, write_atomically
from dlbook.report import HEADLINE_PREFIX, MEASURES_VARIABLE, read_measures
from dlbook.repro import SEED_VARIABLE

BUDGET_SECONDS = 90.0
BUDGET_MIB = 2048.0
# Limits that stop a runaway chapter, derived from the budget with room for a loaded machine.
DEFAULT_CHAPTER_TIMEOUT = 4 * BUDGET_SECONDS
DEFAULT_CELL_TIMEOUT = 2 * BUDGET_SECONDS
DEFAULT_MEMORY_LIMIT_MIB = 4 * BUDGET_MIB
NEAR_LIMIT = 0.9  # a peak at 90 % of a memory limit counts as "near" it
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
INTERRUPTED_EXIT = 130
# Threads per kernel for the book's own run and for nbval. Summation order, and so the last digits
# of a training result, depends on the thread count, so the stored outputs are made, and compared,
# with this one value whatever the machine or the number of parallel jobs.
BOOK_THREADS = 2


@dataclass(frozen=True)
class Limits:
    """When a run is stopped: seconds per cell, seconds per chapter, MiB of kernel memory."""

    cell_s: float = DEFAULT_CELL_TIMEOUT
    chapter_s: float = DEFAULT_CHAPTER_TIMEOUT
    memory_mib: float = DEFAULT_MEMORY_LIMIT_MIB

    def __post_init__(self):
        for name in ("cell_s", "chapter_s", "memory_mib"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"limit {name} must be a positive number, got {value!r}")


@dataclass
class RunResult:
    chapter: str
    title: str
    ok: bool
    wall_s: float
    peak_mib: float
    headline: str
    error: str
    finished: str  # UTC ISO time
    seed: int | None = None  # None: the book's own run, which writes the notebook
    cpu_s: float = 0.0  # CPU seconds the kernel used: unlike wall time, barely changed by load
    code: str = ""  # fingerprint of the code that ran
    measures: dict[str, float] = field(default_factory=dict)


@dataclass
class RunOutcome:
    """What a batch of jobs gave: one result per finished job, and whether Ctrl-C cut it short."""

    results: list  # RunResult for chapters; whatever the jobs' targets return otherwise
    not_run: list[str] = field(default_factory=list)  # jobs cancelled by an interrupt

    @property
    def interrupted(self) -> bool:
        return bool(self.not_run)


class PeakMemory:
    """Track the peak resident memory of a process (the kernel) from a background thread.

    When ``limit_bytes`` is given and the kernel goes above it, ``on_limit`` is called once.
    """

    def __init__(self, pid: int, interval: float = 0.05, limit_bytes: float | None = None,
                 on_limit=None):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_bytes = 0
        self.limit_bytes = limit_bytes
        self.on_limit = on_limit
        self.limit_hit = False
        self.cpu_seconds = 0.0  # user + system time of the kernel and its children, so far
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def sample(self) -> None:
        try:
            rss = self.process.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, rss, _high_water_mark(self.process.pid))
            times = self.process.cpu_times()
            self.cpu_seconds = times.user + times.system + times.children_user + times.children_system
        except psutil.Error:  # the kernel has exited; the last sample stands
            return
        if self.limit_bytes and rss > self.limit_bytes and not self.limit_hit:
            self.limit_hit = True
            if self.on_limit is not None:
                self.on_limit()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _high_water_mark(pid: int) -> int:
    """Linux's exact peak RSS (VmHWM) in bytes; 0 where /proc is not available."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def find_headline(notebook) -> str:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(HEADLINE_PREFIX):
                    return line[len(HEADLINE_PREFIX):]
    return ""


def coalesce_streams(notebook) -> None:
    """Merge consecutive stream outputs of the same name (stdout, stderr) in every code cell.

    How a cell's printed text is split into outputs depends on timing (when the kernel flushed),
    so without this a rebuild of unchanged code would rewrite notebooks whose content is the same.
    """
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (output.get("output_type") == "stream" and previous is not None
                    and previous.get("output_type") == "stream"
                    and previous.get("name") == output.get("name")):
                previous["text"] = previous["text"] + output["text"]
            else:
                merged.append(output)
        cell.outputs = merged


def clear_after(notebook, cell_index: int) -> None:
    """Remove the outputs of every code cell after ``cell_index``: they come from an older run."""
    for cell in notebook.cells[cell_index + 1:]:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None


def _signal_name(returncode: int | None) -> str:
    if returncode is None:
        return "an unknown status"
    if returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class _Watch:
    """Why a kernel was stopped by the worker itself (a limit), if it was."""

    reason: str = ""
    cell: int = -1


def _describe_failure(chapter: Chapter, cell_index: int, notebook, error: BaseException,
                      watch: _Watch, returncode: int | None, peak_mib: float,
                      limits: Limits) -> str:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    rel = chapter.notebook.relative_to(chapter.root)
    cell = notebook.cells[cell_index] if 0 <= cell_index < len(notebook.cells) else None
    first_line = (cell.source.strip().splitlines() or [""])[0][:60] if cell else ""
    where = f"{rel}, cell {cell_index} ({first_line!r})"
    location = source_location(chapter, notebook, cell_index)
    if location:
        where += f" at {location}"
    if watch.reason == "chapter":
        return (f"{where}: the chapter ran past its time limit of {limits.chapter_s:.0f} s "
                "(--timeout); the kernel was stopped")
    if watch.reason == "memory":
        return (f"{where}: the kernel went over the memory limit of {limits.memory_mib:.0f} MiB "
                f"(--memory-limit; peak {peak_mib:.0f} MiB); the kernel was stopped")
    if isinstance(error, DeadKernelError):
        message = f"{where}: the kernel died ({_signal_name(returncode)})"
        total_mib = psutil.virtual_memory().total / 2**20
        if peak_mib >= NEAR_LIMIT * min(limits.memory_mib, total_mib):
            message += (f"; its peak memory, {peak_mib:.0f} MiB, was near the limit, so it probably "
                        "ran out of memory")
        return message
    if isinstance(error, CellTimeoutError):
        return f"{where}: the cell ran past its time limit of {limits.cell_s:.0f} s (--cell-timeout)"
    if isinstance(error, CellExecutionError):
        return f"{where}: {error.ename}: {error.evalue}"
    return f"{where}: {type(error).__name__}: {error}"


# Set in a worker while its kernel runs, so that SIGTERM (Ctrl-C in the parent) can stop it.
_KERNEL = {"pid": None, "connection_file": None}


def _stop_kernel() -> None:
    pid = _KERNEL["pid"]
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)  # the kernel leads its own session (jupyter_client)
        except (ProcessLookupError, PermissionError):
            pass


def _on_terminate(signum, frame):  # noqa: ARG001 — signal handler signature
    _stop_kernel()
    connection_file = _KERNEL["connection_file"]
    if connection_file:
        Path(connection_file).unlink(missing_ok=True)
    os._exit(INTERRUPTED_EXIT)


def kernel_environment(threads: int, seed: int | None = None,
                       measures: Path | None = None) -> dict[str, str]:
    """The kernel's environment: bounded threads, the seed override only when asked for."""
    env = {k: v for k, v in os.environ.items() if k not in (SEED_VARIABLE, MEASURES_VARIABLE)}
    for variable in THREAD_VARIABLES:
        env[variable] = str(threads)
    env["DLBOOK_THREADS"] = str(threads)
    if measures is not None:
        env[MEASURES_VARIABLE] = str(measures)
    if seed is not None:
        env[SEED_VARIABLE] = str(seed)
    return env


@dataclass
class Execution:
    """How executing a notebook went (the notebook itself is filled in place)."""

    error: BaseException | None  # None: every cell ran (with allow_errors, errors are in outputs)
    cell: int  # the cell running when it stopped, or the last cell
    watch: _Watch  # a limit the worker itself enforced, if one was hit
    returncode: int | None  # the kernel's exit status, when it died
    peak_bytes: float
    cpu_s: float
    wall_s: float


def execute(notebook, workdir: Path, env: dict[str, str], limits: Limits, kernel_log: Path,
            allow_errors: bool = False) -> Execution:
    """Run ``notebook`` in a fresh kernel in ``workdir`` under ``limits``; fill in its outputs.

    With ``allow_errors`` a cell that raises, or runs past the cell limit (the kernel is
    interrupted), does not stop the run: its error is stored as its output, as nbgrader does.
    The chapter limit and the memory limit stop the kernel either way.
    """
    from nbclient import NotebookClient

    current = {"index": -1}
    watch = _Watch()
    memory: dict[str, PeakMemory] = {}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index

    def on_cell_complete(cell, cell_index):
        memory["kernel"].sample()  # also the CPU time, which cannot be read once the kernel exits

    def stop(reason: str) -> None:
        if not watch.reason:
            watch.reason, watch.cell = reason, current["index"]
            _stop_kernel()

    quiet = logging.getLogger("dlbook.execute")  # nbclient logs every timeout it handles itself
    quiet.propagate, quiet.disabled = False, allow_errors
    client = NotebookClient(
        notebook,
        timeout=max(1, int(limits.cell_s)),
        kernel_name="python3",
        record_timing=False,
        allow_errors=allow_errors,
        interrupt_on_timeout=allow_errors,
        log=quiet,
        resources={"metadata": {"path": str(workdir)}},
        on_cell_start=on_cell_start,
        on_cell_complete=on_cell_complete,
    )
    kernel_log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    returncode, failure = None, None
    timer = threading.Timer(limits.chapter_s, stop, args=("chapter",))
    timer.daemon = True
    try:
        # TensorFlow's C++ logs go to the kernel's stderr: keep them in a file, not the terminal.
        with open(kernel_log, "w") as log, client.setup_kernel(stderr=log, env=env):
            process = client.km.provisioner.process
            _KERNEL["pid"], _KERNEL["connection_file"] = process.pid, client.km.connection_file
            memory["kernel"] = PeakMemory(process.pid, limit_bytes=limits.memory_mib * 2**20,
                                          on_limit=lambda: stop("memory"))
            timer.start()
            try:
                with memory["kernel"]:
                    client.execute(cleanup_kc=False)
            finally:
                timer.cancel()
                returncode = process.poll()
    except Exception as error:  # every failure is reported against its notebook and cell
        failure = error
    finally:
        _KERNEL["pid"] = _KERNEL["connection_file"] = None
    kernel = memory.get("kernel")
    return Execution(failure, watch.cell if watch.reason else current["index"], watch, returncode,
                     kernel.peak_bytes if kernel else 0, kernel.cpu_seconds if kernel else 0.0,
                     time.perf_counter() - started)


def run_chapter(chapter: Chapter, seed: int | None = None, limits: Limits | None = None,
                threads: int | None = None) -> RunResult:
    """Execute one chapter in a fresh kernel.

    Without ``seed`` this is the book's own run: the notebook is written back only if every cell
    ran, and the kernel always has :data:`BOOK_THREADS` threads. With ``seed`` the kernel runs with
    ``DLBOOK_SEED=seed`` (and ``threads``, default :data:`BOOK_THREADS`) and nothing is written.
    """
    limits = limits or Limits()
    threads = BOOK_THREADS if seed is None else (threads or BOOK_THREADS)
    problem = drift(chapter)
    if problem is not None:
        return _failed(chapter, seed, f"{problem}; refusing to run a notebook that is not in sync")
    notebook = read_notebook(chapter)
    code = code_fingerprint(notebook)
    suffix = f".seed{seed}" if seed is not None else ""
    kernel_log = chapter.root / "build" / "logs" / f"{chapter.stem}{suffix}.kernel.log"
    handle, measures_name = tempfile.mkstemp(prefix=f"{chapter.stem}.", suffix=".measures")
    os.close(handle)
    measures_file = Path(measures_name)
    try:
        run = execute(notebook, chapter.notebook.parent,
                      kernel_environment(threads, seed, measures_file), limits, kernel_log)
        measures = read_measures(measures_file)
    finally:
        measures_file.unlink(missing_ok=True)
    if run.error is not None:
        message = _describe_failure(chapter, run.cell, notebook, run.error, run.watch,
                                    run.returncode, run.peak_bytes / 2**20, limits)
        if seed is None:
            clear_after(notebook, run.cell)
            coalesce_streams(notebook)
            failed_copy = chapter.root / "build" / "failed" / chapter.notebook.name
            write_atomically(notebook, failed_copy)
            message += f" (partial run in {failed_copy.relative_to(chapter.root)}"
        else:
            message += " (seed run"
        message += f", kernel log in {kernel_log.relative_to(chapter.root)})"
        return _failed(chapter, seed, message, run.wall_s, run.peak_bytes, code)
    if seed is None:
        # The executor's exact Python version is not part of the book; keep the file machine-neutral.
        notebook.metadata["language_info"] = {"name": "python"}
        notebook.metadata["dlbook"]["executed"] = code
        coalesce_streams(notebook)
        _write_uninterrupted(notebook, chapter.notebook)
    return RunResult(
        chapter.stem, chapter.title(), True, round(run.wall_s, 1), round(run.peak_bytes / 2**20, 0),
        find_headline(notebook), "", _now(), seed, round(run.cpu_s, 1), code, measures,
    )


def _write_uninterrupted(notebook, path: Path) -> None:
    """Write atomically with SIGTERM held back, so an interrupt cannot land mid-write."""
    blocked = {signal.SIGTERM} if hasattr(signal, "pthread_sigmask") else set()
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        write_atomically(notebook, path)
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)


def _failed(chapter: Chapter, seed: int | None, error: str, wall: float = 0.0, peak: float = 0.0,
            code: str = "") -> RunResult:
    return RunResult(
        chapter.stem, chapter.title(), False, round(wall, 1), round(peak / 2**20, 0), "", error,
        _now(), seed, code=code,
    )


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Job:
    """One unit of work for a worker process: ``target(*args, limits=…, threads=…)``.

    ``target`` is a module-level function (workers are spawned, so it travels by name); ``lost``
    makes the result to report when the work cannot produce one (an engine bug, a dead worker).
    """

    name: str
    target: Callable
    args: tuple
    lost: Callable[[str], object]


def chapter_job(chapter: Chapter, seed: int | None = None) -> Job:
    """Run a chapter: the book's own run (``seed=None``) or a seed run."""
    name = chapter.stem if seed is None else f"{chapter.stem} (seed {seed})"
    return Job(name, run_chapter, (chapter, seed), functools.partial(_failed, chapter, seed))


def _worker(index: int, job: Job, limits: Limits, threads: int, results) -> None:
    """A worker process: one job, its result put on ``results``. Ctrl-C is the parent's business.

    The job runs in a second thread: nbclient installs its own SIGINT/SIGTERM handlers when it
    runs in the main thread, and those would shut the kernel down gracefully (and slowly)
    instead of leaving interrupts to the parent and SIGTERM to :func:`_on_terminate`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_terminate)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["result"] = job.target(*job.args, limits=limits, threads=threads)
        except Exception as error:  # a bug in the engine itself: still one line, for its job
            box["result"] = job.lost(f"dlbook could not run it: {type(error).__name__}: {error}")

    thread = threading.Thread(target=work, name=f"run {job.name}")
    thread.start()
    thread.join()
    results.put((index, box["result"]))


def run_jobs(jobs: list[Job], parallel: int = 1, threads: int | None = None,
             limits: Limits | None = None, on_result=None) -> RunOutcome:
    """Run jobs, ``parallel`` at a time, each in a fresh worker; results come back in job order.

    ``threads`` bounds each kernel's threads (default :data:`BOOK_THREADS`; the book's own run of a
    chapter always uses that).

    Ctrl-C (``KeyboardInterrupt``) stops the batch: jobs not yet started are not run, running
    workers stop their kernels and write nothing; the outcome lists what finished and what did not.
    """
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"jobs must be at least 1, got {parallel}")
    threads = threads if threads is not None else BOOK_THREADS
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    limits = limits or Limits()
    context = get_context("spawn")  # spawned workers start clean: no inherited loops or sockets
    results_queue = context.Queue()
    pending = list(enumerate(jobs))
    running: dict[int, object] = {}
    started_at: dict[int, float] = {}
    finished: dict[int, object] = {}
    backstop = limits.chapter_s + 120  # the worker enforces the limit; this catches a hung worker
    try:
        while pending or running:
            while pending and len(running) < parallel:
                index, job = pending.pop(0)
                # Workers start with SIGINT blocked so that Ctrl-C during their start-up cannot
                # print a traceback from them; each unblocks it after ignoring it.
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                try:
                    process = context.Process(target=_worker, daemon=True,
                                              args=(index, job, limits, threads, results_queue))
                    process.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
                running[index], started_at[index] = process, time.perf_counter()
            try:
                index, result = results_queue.get(timeout=0.2)
            except queue.Empty:
                _reap_lost_workers(jobs, running, started_at, finished, backstop, on_result)
                continue
            running.pop(index).join()
            finished[index] = result
            if on_result is not None:
                on_result(result)
    except KeyboardInterrupt:
        for process in running.values():
            process.terminate()  # SIGTERM: the worker kills its kernel and exits at once
        for process in running.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        not_run = [jobs[i].name for i in sorted(set(range(len(jobs))) - set(finished))]
        return RunOutcome([finished[i] for i in sorted(finished)], not_run)
    return RunOutcome([finished[i] for i in sorted(finished)])


def _reap_lost_workers(jobs, running, started_at, finished, backstop, on_result) -> None:
    """Turn a worker that died without a result, or hangs past every limit, into a failure."""
    for index, process in list(running.items()):
        overdue = time.perf_counter() - started_at[index] > backstop
        if process.is_alive() and not overdue:
            continue
        if overdue:
            process.kill()
        process.join(timeout=10)
        why = "hung past every limit" if overdue else f"died ({_signal_name(process.exitcode)})"
        result = jobs[index].lost(f"the dlbook worker running it {why}")
        running.pop(index)
        finished[index] = result
        if on_result is not None:
            on_result(result)


def run_chapters(chapters: list[Chapter], jobs: int = 1, threads: int | None = None,
                 limits: Limits | None = None, on_result=None) -> RunOutcome:
    """The book's own run of ``chapters``: executed notebooks are written back."""
    return run_jobs([chapter_job(c) for c in chapters], jobs, threads, limits, on_result)


def cpu_model() -> str:
    """The processor's model name and widest vector extension: training results printed to three
    decimals can differ between processors with different SIMD units, so reports say which."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    widest = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "")
    return f"{names[0] if names else platform.machine()}" + (f" ({widest})" if widest else "")


def machine_description() -> dict:
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def parse_seeds(text: str) -> list[int]:
    """``"42,0-3"`` → ``[42, 0, 1, 2, 3]``: comma-separated seeds and inclusive ranges."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise DlbookError(f"seeds are non-negative integers or ranges such as 0-4, got {part!r}")
        span = range(int(low), int(high or low) + 1)
        if not span:
            raise DlbookError(f"seed range {part!r} is empty")
        seeds.extend(s for s in span if s not in seeds)
    return seeds
