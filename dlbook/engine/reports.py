"""The book's two reports, kept in ``reports/``: the run report and the seed-sweep report.

- **Run report** (``run_report.{json,md}``): per chapter, its last run — wall time, peak memory,
  headline — with its status: ``ok``, ``FAILED`` (the last attempt failed; the numbers are from the
  last good run) or ``stale`` (the chapter's code changed since).
- **Seed-sweep report** (``seed_sweep.{json,md}``): per chapter and seed, passed or the failure,
  and the values the chapter recorded with :func:`dlbook.report.measure`, so that a range the prose
  quotes can be traced to runs anyone can repeat (``dlbook sweep``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from dlbook.engine.chapters import Chapter, DlbookError, all_chapters, build_notebook
from dlbook.engine.runner import BUDGET_MIB, BUDGET_SECONDS, RunResult, machine_description
from dlbook.engine.sync import code_fingerprint

REPORT_JSON = Path("reports") / "run_report.json"
REPORT_MARKDOWN = Path("reports") / "run_report.md"
SWEEP_JSON = Path("reports") / "seed_sweep.json"
SWEEP_MARKDOWN = Path("reports") / "seed_sweep.md"
MINIMUM_SWEEP_SEEDS = 5


def current_code(chapter: Chapter) -> str:
    """The fingerprint of a chapter's code as its source is now."""
    return code_fingerprint(build_notebook(chapter))


def load(root: Path, relative: Path) -> dict:
    path = root / relative
    if not path.exists():
        return {"chapters": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DlbookError(f"{relative}: not valid JSON ({error}); restore it with git") from None


def _write(root: Path, relative: Path, text: str) -> None:
    from dlbook.data.registry import write_atomically

    write_atomically(root / relative, text.encode("utf-8"))


# --- The run report ----------------------------------------------------------------------------

def over_budget(entry: dict) -> list[str]:
    reasons = []
    if entry["wall_s"] > BUDGET_SECONDS:
        reasons.append(f"{entry['wall_s']:.0f} s > {BUDGET_SECONDS:.0f} s")
    if entry["peak_mib"] > BUDGET_MIB:
        reasons.append(f"{entry['peak_mib']:.0f} MiB > {BUDGET_MIB:.0f} MiB")
    return reasons


def entry_status(chapter: Chapter, entry: dict | None) -> str:
    """``missing``, ``FAILED``, ``stale`` or ``ok`` for a chapter's run-report entry."""
    if entry is None:
        return "missing"
    if entry.get("status") == "failed":
        return "FAILED"
    if entry.get("code") != current_code(chapter):
        return "stale"
    return "ok"


def update_report(root: Path, results: list[RunResult]) -> dict:
    """Merge the book's own runs into ``reports/run_report.json`` and regenerate the markdown.

    A failed run keeps the chapter's last good numbers but marks the entry failed, with the error;
    a chapter whose source is gone is dropped.
    """
    report = load(root, REPORT_JSON)
    report["machine"] = machine_description()
    report["budget"] = {"wall_s": BUDGET_SECONDS, "peak_mib": BUDGET_MIB}
    entries = report["chapters"]
    for result in results:
        if result.seed is not None:
            continue
        if result.ok:
            entry = asdict(result)
            del entry["seed"], entry["measures"]
            entry["status"] = "ok"
            entries[result.chapter] = entry
        else:
            entry = entries.get(result.chapter) or {
                "chapter": result.chapter, "title": result.title, "wall_s": result.wall_s,
                "peak_mib": result.peak_mib, "headline": "", "code": "", "finished": ""}
            entry.update(status="failed", error=result.error, failed_at=result.finished)
            entries[result.chapter] = entry
    existing = {c.stem for c in all_chapters(root)}
    report["chapters"] = {k: v for k, v in sorted(entries.items()) if k in existing}
    _write(root, REPORT_JSON, json.dumps(report, indent=2) + "\n")
    _write(root, REPORT_MARKDOWN, format_report(root, report) + "\n")
    return report


def format_report(root: Path, report: dict) -> str:
    """The run report as markdown: every chapter with its status, numbers and headline."""
    machine = report.get("machine", {})
    lines = [
        "# Run report", "",
        f"Measured by `dlbook run` on {machine.get('cpus')} CPUs ({machine.get('cpu', 'unknown')}), "
        f"{machine.get('memory_gib')} GiB, "
        f"Python {machine.get('python')}; budget {BUDGET_SECONDS:.0f} s and {BUDGET_MIB:.0f} MiB "
        "per chapter; CPU s is the kernel's user + system time (two threads can make it exceed wall "
        "time; unlike wall time it barely changes on a loaded machine). Status: ok; FAILED (the "
        "last run failed, the numbers are the last good run's); stale (the chapter changed since "
        "it ran).", "",
        "| chapter | status | wall s | CPU s | peak MiB | budget | headline |",
        "|---|---|---|---|---|---|---|",
    ]
    chapters = {c.stem: c for c in all_chapters(root)}
    for stem, entry in report["chapters"].items():
        status = entry_status(chapters[stem], entry) if stem in chapters else "missing"
        budget = "; ".join(over_budget(entry)) or "ok"
        lines.append(f"| {stem} | {status} | {entry['wall_s']:.1f} | {entry.get('cpu_s', 0):.0f} | "
                     f"{entry['peak_mib']:.0f} | {budget} | {entry.get('headline', '')} |")
    total = sum(e["wall_s"] for e in report["chapters"].values())
    lines += ["", f"Total: {len(report['chapters'])} chapters, {total:.0f} s run one at a time."]
    return "\n".join(lines)


def format_results(results: list[RunResult], elapsed_s: float) -> str:
    """The table printed after a run: only the jobs that ran now, and a total line."""
    header = ["chapter", "seed", "status", "wall s", "CPU s", "peak MiB", "budget", "headline"]
    rows = []
    for result in results:
        entry = {"wall_s": result.wall_s, "peak_mib": result.peak_mib}
        rows.append([result.chapter, "book" if result.seed is None else str(result.seed),
                     "ok" if result.ok else "FAILED", f"{result.wall_s:.1f}",
                     f"{result.cpu_s:.0f}", f"{result.peak_mib:.0f}", "; ".join(over_budget(entry)) or "ok",
                     result.headline if result.ok else result.error])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  " + header[-1]]
    for row in rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])
    failed = sum(1 for r in results if not r.ok)
    peak = max((r.peak_mib for r in results), default=0)
    lines.append(f"total: {len(results)} run(s), {len(results) - failed} ok, {failed} failed; "
                 f"{sum(r.wall_s for r in results):.1f} s of chapter time in {elapsed_s:.1f} s; "
                 f"highest peak {peak:.0f} MiB")
    return "\n".join(lines)


# --- The seed-sweep report ---------------------------------------------------------------------

def update_sweep(root: Path, results: list[RunResult]) -> dict:
    """Merge seed runs into ``reports/seed_sweep.json`` and regenerate the markdown.

    A chapter's earlier seeds are kept only if they ran the same code as the new ones.
    """
    report = load(root, SWEEP_JSON)
    report["machine"] = machine_description()
    entries = report["chapters"]
    for result in results:
        if result.seed is None:
            continue
        entry = entries.get(result.chapter)
        if entry is None or entry.get("code") != result.code:
            entry = {"title": result.title, "code": result.code, "seeds": {}}
            entries[result.chapter] = entry
        entry["title"] = result.title
        entry["seeds"][str(result.seed)] = {
            "ok": result.ok, "wall_s": result.wall_s, "cpu_s": result.cpu_s, "peak_mib": result.peak_mib,
            "error": result.error, "finished": result.finished, "measures": result.measures,
        }
    existing = {c.stem for c in all_chapters(root)}
    report["chapters"] = {k: v for k, v in sorted(entries.items()) if k in existing}
    _write(root, SWEEP_JSON, json.dumps(report, indent=2) + "\n")
    _write(root, SWEEP_MARKDOWN, format_sweep(root, report) + "\n")
    return report


def sweep_problems(chapter: Chapter, entry: dict | None, book_seed: int) -> list[str]:
    """Why a chapter's sweep entry does not show its claims holding for enough seeds, if it does not."""
    if entry is None:
        return [f"{chapter.stem}: not in {SWEEP_JSON} (run `python3 book.py sweep {chapter.stem}`)"]
    problems = []
    if entry.get("code") != current_code(chapter):
        problems.append(f"{chapter.stem}: the seed sweep ran older code (re-run "
                        f"`python3 book.py sweep {chapter.stem}`)")
    seeds = entry.get("seeds", {})
    if len(seeds) < MINIMUM_SWEEP_SEEDS:
        problems.append(f"{chapter.stem}: the sweep has {len(seeds)} seed(s), at least "
                        f"{MINIMUM_SWEEP_SEEDS} are needed")
    if str(book_seed) not in seeds:
        problems.append(f"{chapter.stem}: the sweep does not include the book's seed {book_seed}")
    for seed, run in seeds.items():
        if not run["ok"]:
            problems.append(f"{chapter.stem}: fails with seed {seed}: {run['error']}")
    return problems


def _value(number: float) -> str:
    magnitude = abs(number)
    if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-3):
        return f"{number:.3g}"
    if magnitude >= 100:
        return f"{number:.1f}"
    return f"{number:.4g}" if magnitude >= 1 else f"{number:.3f}"


def format_sweep(root: Path, report: dict) -> str:
    """The seed-sweep report as markdown: a summary, then each chapter's measures per seed."""
    chapters = {c.stem: c for c in all_chapters(root)}
    lines = [
        "# Seed-sweep report", "",
        "Each chapter run in fresh kernels with `DLBOOK_SEED` set to each seed (`dlbook sweep`), "
        "nothing written but this report. A chapter passes a seed when every cell, and so every "
        "asserted claim, passed. The measures are the numbers each chapter records with "
        "`dlbook.report.measure`; ranges quoted in the book's prose come from these tables.", "",
        "| chapter | seeds | passed | code | slowest s |",
        "|---|---|---|---|---|",
    ]
    for stem, entry in report["chapters"].items():
        seeds = entry["seeds"]
        passed = [s for s, r in seeds.items() if r["ok"]]
        failed = [s for s, r in seeds.items() if not r["ok"]]
        current = stem in chapters and entry["code"] == current_code(chapters[stem])
        verdict = f"{len(passed)} of {len(seeds)}" + (f" (fails: {', '.join(failed)})" if failed else "")
        slowest = max((r["wall_s"] for r in seeds.values()), default=0)
        lines.append(f"| {stem} | {', '.join(seeds)} | {verdict} | "
                     f"{'current' if current else 'stale'} | {slowest:.1f} |")
    for stem, entry in report["chapters"].items():
        seeds = entry["seeds"]
        lines += ["", f"## {stem}: {entry['title']}", ""]
        names = list(dict.fromkeys(n for r in seeds.values() for n in r["measures"]))
        for seed, run in seeds.items():
            if not run["ok"]:
                lines.append(f"- seed {seed} FAILED: {run['error']}")
        if not names:
            lines.append("No measures recorded.")
            continue
        lines += ["| measure | " + " | ".join(f"seed {s}" for s in seeds) + " | min | max |",
                  "|---|" + "---|" * (len(seeds) + 2)]
        for name in names:
            values = [run["measures"].get(name) for run in seeds.values()]
            shown = [_value(v) if v is not None else "—" for v in values]
            present = [v for v in values if v is not None]
            lines.append(f"| {name} | " + " | ".join(shown)
                         + f" | {_value(min(present))} | {_value(max(present))} |")
    return "\n".join(lines)
