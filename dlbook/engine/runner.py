"""``dlbook run``: execute notebooks in fresh kernels and report time, memory and headline.

Each chapter runs in its own worker process with its own kernel; workers run in parallel and
each kernel is limited to a few threads so that parallel chapters do not oversubscribe the CPU.
A notebook is written back only after every cell ran, and atomically.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import psutil

from dlbook.engine.chapters import Chapter
from dlbook.report import HEADLINE_PREFIX
from dlbook.engine.sync import code_fingerprint, drift, read_notebook, write_atomically

BUDGET_SECONDS = 90.0
BUDGET_MIB = 2048.0
REPORT_JSON = Path("reports") / "run_report.json"
REPORT_MARKDOWN = Path("reports") / "run_report.md"
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


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


class PeakMemory:
    """Track the peak resident memory of a process (the kernel) from a background thread."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def sample(self) -> None:
        try:
            rss = self.process.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, rss, _high_water_mark(self.process.pid))
        except psutil.Error:  # the kernel has exited; the last sample stands
            pass

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


def _describe_failure(chapter: Chapter, cell_index: int, notebook, error: BaseException) -> str:
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    rel = chapter.notebook.relative_to(chapter.root)
    cell = notebook.cells[cell_index] if 0 <= cell_index < len(notebook.cells) else None
    first_line = (cell.source.strip().splitlines() or [""])[0][:60] if cell else ""
    where = f"{rel}, cell {cell_index} ({first_line!r})"
    if isinstance(error, DeadKernelError):
        return f"{where}: the kernel died (out of memory, or a crash in native code)"
    if isinstance(error, CellTimeoutError):
        return f"{where}: timed out"
    if isinstance(error, CellExecutionError):
        return f"{where}: {error.ename}: {error.evalue}"
    return f"{where}: {type(error).__name__}: {error}"


def run_chapter(chapter: Chapter, cell_timeout: int = 600) -> RunResult:
    """Execute one chapter's notebook in a fresh kernel; write it back only if every cell ran."""
    from nbclient import NotebookClient

    problem = drift(chapter)
    if problem is not None:
        return _failed(chapter, f"{problem}; refusing to run a notebook that is not in sync")
    notebook = read_notebook(chapter)
    current = {"index": -1}
    memory: dict[str, PeakMemory] = {}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index

    def on_cell_complete(cell, cell_index):
        memory["kernel"].sample()

    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(chapter.notebook.parent)}},
        on_cell_start=on_cell_start,
        on_cell_complete=on_cell_complete,
    )
    logs = chapter.root / "build" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kernel_log = logs / f"{chapter.stem}.kernel.log"
    started = time.perf_counter()
    try:
        # TensorFlow's C++ logs go to the kernel's stderr: keep them in a file, not the terminal.
        with open(kernel_log, "w") as log, client.setup_kernel(stderr=log):
            memory["kernel"] = PeakMemory(client.km.provisioner.pid)
            with memory["kernel"]:
                client.execute(cleanup_kc=False)
    except Exception as error:  # every failure is reported against its chapter and cell
        peak = memory["kernel"].peak_bytes if "kernel" in memory else 0
        failed_copy = chapter.root / "build" / "failed" / chapter.notebook.name
        write_atomically(notebook, failed_copy)
        rel = failed_copy.relative_to(chapter.root)
        message = _describe_failure(chapter, current["index"], notebook, error)
        return _failed(
            chapter, f"{message} (partial run in {rel}, kernel log in "
            f"{kernel_log.relative_to(chapter.root)})", time.perf_counter() - started, peak,
        )
    wall = time.perf_counter() - started
    # The executor's exact Python version is not part of the book; keep the file machine-neutral.
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.metadata["dlbook"]["executed"] = code_fingerprint(notebook)
    write_atomically(notebook, chapter.notebook)
    return RunResult(
        chapter.stem, chapter.title(), True, round(wall, 1),
        round(memory["kernel"].peak_bytes / 2**20, 0), find_headline(notebook), "", _now(),
    )


def _failed(chapter: Chapter, error: str, wall: float = 0.0, peak: float = 0.0) -> RunResult:
    return RunResult(
        chapter.stem, chapter.title(), False, round(wall, 1), round(peak / 2**20, 0), "", error,
        _now(),
    )


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _worker(chapter: Chapter, threads: int, cell_timeout: int) -> RunResult:
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    os.environ["DLBOOK_THREADS"] = str(threads)
    return run_chapter(chapter, cell_timeout)


def run_chapters(
    chapters: list[Chapter], jobs: int = 1, threads: int | None = None, cell_timeout: int = 600,
    on_result=None,
) -> list[RunResult]:
    """Run chapters, ``jobs`` at a time, each kernel limited to ``threads`` threads."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    cpus = os.cpu_count() or 1
    threads = threads or max(1, cpus // jobs)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    results: list[RunResult] = []
    # Spawned workers start clean: no inherited event loops or ZMQ contexts.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_worker, c, threads, cell_timeout) for c in chapters]
        for future in futures:
            result = future.result()
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def machine_description() -> dict:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def update_report(root: Path, results: list[RunResult]) -> dict:
    """Merge results into ``reports/run_report.json`` and regenerate the markdown table."""
    path = root / REPORT_JSON
    report = json.loads(path.read_text()) if path.exists() else {"chapters": {}}
    report["machine"] = machine_description()
    report["budget"] = {"wall_s": BUDGET_SECONDS, "peak_mib": BUDGET_MIB}
    for result in results:
        if result.ok:  # a failed run says nothing about a chapter's cost; keep its last good run
            report["chapters"][result.chapter] = asdict(result)
    existing = {p.stem for p in (root / "chapters").glob("*.md")}
    report["chapters"] = {k: v for k, v in sorted(report["chapters"].items()) if k in existing}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    (root / REPORT_MARKDOWN).write_text(format_table(report, markdown=True) + "\n")
    return report


def over_budget(entry: dict) -> list[str]:
    reasons = []
    if entry["wall_s"] > BUDGET_SECONDS:
        reasons.append(f"{entry['wall_s']:.0f} s > {BUDGET_SECONDS:.0f} s")
    if entry["peak_mib"] > BUDGET_MIB:
        reasons.append(f"{entry['peak_mib']:.0f} MiB > {BUDGET_MIB:.0f} MiB")
    return reasons


def format_table(report: dict, markdown: bool = False) -> str:
    """The per-chapter table: wall seconds, peak memory, headline result."""
    header = ["chapter", "wall s", "peak MiB", "budget", "headline"]
    rows = []
    for stem, entry in report["chapters"].items():
        budget = "; ".join(over_budget(entry)) or "ok"
        rows.append([stem, f"{entry['wall_s']:.1f}", f"{entry['peak_mib']:.0f}", budget,
                     entry["headline"]])
    machine = report.get("machine", {})
    caption = (
        f"Measured on {machine.get('cpus')} CPUs, {machine.get('memory_gib')} GiB, "
        f"Python {machine.get('python')}; budget {BUDGET_SECONDS:.0f} s and "
        f"{BUDGET_MIB:.0f} MiB per chapter."
    )
    if markdown:
        lines = ["# Run report", "", caption, "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  headline"]
    for row in rows:
        cells = [v.ljust(w) for v, w in zip(row, widths, strict=False)]
        lines.append("  ".join(cells) + "  " + row[-1])
    return "\n".join([*lines, caption])
