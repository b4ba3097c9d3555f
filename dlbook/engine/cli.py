"""The ``dlbook`` command: ``sync``, ``run``, ``list`` and ``check`` over the book's chapters."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from dlbook.engine.chapters import DlbookError, find_root, resolve
from dlbook.engine.runner import (
    REPORT_JSON,
    format_table,
    over_budget,
    run_chapters,
    update_report,
)
from dlbook.engine.sync import drift, execution_problem, sync_chapter


def _sync(args, root) -> int:
    chapters = resolve(root, args.chapters)
    if args.check:
        problems = [p for p in (drift(c) for c in chapters) if p]
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{len(chapters)} notebook(s) in sync with their sources")
        return 1 if problems else 0
    for chapter in chapters:
        result = sync_chapter(chapter, force=args.force)
        print(f"{chapter.stem}: {result.status} ({result.kept} code cells keep their outputs, "
              f"{result.cleared} need `dlbook run`)")
    return 0


def _run(args, root) -> int:
    chapters = resolve(root, args.chapters)

    def show(result):
        state = "ok" if result.ok else "FAILED"
        print(f"{result.chapter}: {state} in {result.wall_s:.1f} s, peak {result.peak_mib:.0f} MiB"
              + (f" — {result.error}" if result.error else ""), flush=True)

    jobs = max(1, min(args.jobs, len(chapters)))
    results = run_chapters(chapters, jobs=jobs, threads=args.threads, on_result=show)
    report = update_report(root, results)
    print()
    print(format_table(report))
    over = [stem for stem, entry in report["chapters"].items() if over_budget(entry)]
    if over:
        print(f"over budget: {', '.join(over)}")
    failed = [r for r in results if not r.ok]
    for result in failed:
        print(f"dlbook: {result.chapter} failed: {result.error}", file=sys.stderr)
    return 1 if failed else 0


def _list(args, root) -> int:
    report_path = root / REPORT_JSON
    report = json.loads(report_path.read_text()) if report_path.exists() else {"chapters": {}}
    for chapter in resolve(root, args.chapters):
        synced = "synced" if drift(chapter) is None else "NOT SYNCED"
        executed = ("executed" if synced == "synced" and execution_problem(chapter) is None
                    else "NOT EXECUTED")
        entry = report["chapters"].get(chapter.stem)
        last = "never run"
        if entry:
            when = datetime.fromisoformat(entry["finished"]).strftime("%Y-%m-%d %H:%M UTC")
            last = f"last run {when}: {entry['wall_s']:.1f} s, {entry['peak_mib']:.0f} MiB"
        print(f"{chapter.stem:28} {synced:10} {executed:12} {last}  {chapter.title()}")
    return 0


def _check(args, root) -> int:
    """Every invariant of the committed book, without executing anything."""
    chapters = resolve(root, args.chapters)
    problems = []
    report_path = root / REPORT_JSON
    report = json.loads(report_path.read_text()) if report_path.exists() else {"chapters": {}}
    for chapter in chapters:
        problem = drift(chapter) or execution_problem(chapter)
        if problem:
            problems.append(problem)
        entry = report["chapters"].get(chapter.stem)
        if entry is None:
            problems.append(f"{chapter.stem}: not in {REPORT_JSON} (run `dlbook run`)")
        elif over_budget(entry):
            problems.append(f"{chapter.stem}: over budget ({'; '.join(over_budget(entry))})")
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(chapters)} chapter(s): in sync, executed, within budget")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlbook", description="Build and check the executable deep-learning book."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    names = {"nargs": "*", "metavar": "CHAPTER",
             "help": "chapter stem, number or slug (default: every chapter)"}

    sync = commands.add_parser("sync", help="chapters/*.md → notebooks/*.ipynb")
    sync.add_argument("chapters", **names)
    sync.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    sync.add_argument("--force", action="store_true", help="overwrite notebooks edited by hand")
    sync.set_defaults(handler=_sync)

    run = commands.add_parser("run", help="execute notebooks; report time and memory")
    run.add_argument("chapters", **names)
    run.add_argument("-j", "--jobs", type=int, default=1, help="chapters run at once (default 1)")
    run.add_argument("--threads", type=int, default=None,
                     help="threads per kernel (default: CPUs / jobs)")
    run.set_defaults(handler=_run)

    listing = commands.add_parser("list", help="chapters with title, status and last run")
    listing.add_argument("chapters", **names)
    listing.set_defaults(handler=_list)

    check = commands.add_parser("check", help="sync, execution and budget invariants")
    check.add_argument("chapters", **names)
    check.set_defaults(handler=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "jobs", 1) < 1:
            raise DlbookError(f"--jobs must be at least 1, got {args.jobs}")
        if getattr(args, "threads", None) is not None and args.threads < 1:
            raise DlbookError(f"--threads must be at least 1, got {args.threads}")
        return args.handler(args, find_root())
    except DlbookError as error:
        print(f"dlbook: error: {error}", file=sys.stderr)
        return 2
