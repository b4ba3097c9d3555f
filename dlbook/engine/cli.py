"""The ``dlbook`` command: ``sync``, ``run``, ``sweep``, ``list``, ``check``, ``assign``, ``grade``,
``html``.

Errors a person can act on are one line on stderr and exit code 2; a failed chapter is exit code 1;
Ctrl-C is exit code 130, after saying what finished.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from dlbook.engine import assign, grade, reports, rules
from dlbook.engine.chapters import DlbookError, find_root, resolve
from dlbook.engine.runner import (
    BOOK_THREADS,
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_CHAPTER_TIMEOUT,
    DEFAULT_MEMORY_LIMIT_MIB,
    INTERRUPTED_EXIT,
    Limits,
    chapter_job,
    parse_seeds,
    run_jobs,
)
from dlbook.engine.sync import drift, execution_problem, readme_drift, sync_chapter, sync_readme

DEFAULT_SWEEP_SEEDS = "0-3"


def _sync(args, root) -> int:
    chapters = resolve(root, args.chapters)
    if args.check:
        problems = [p for p in (drift(c) for c in chapters) if p]
        if readme_drift(root):
            problems.append(readme_drift(root))
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{len(chapters)} notebook(s) in sync with their sources")
        return 1 if problems else 0
    for chapter in chapters:
        result = sync_chapter(chapter, force=args.force)
        print(f"{chapter.stem}: {result.status} ({result.kept} code cells keep their outputs, "
              f"{result.cleared} need `dlbook run`)")
    if sync_readme(root):
        print("README.md: chapter table updated")
    return 0


def _show(result) -> None:
    seed = "" if result.seed is None else f" (seed {result.seed})"
    state = "ok" if result.ok else "FAILED"
    print(f"{result.chapter}{seed}: {state} in {result.wall_s:.1f} s, peak {result.peak_mib:.0f} MiB"
          + (f" — {result.error}" if result.error else ""), flush=True)


def _limits(args) -> Limits:
    return Limits(cell_s=args.cell_timeout, chapter_s=args.timeout, memory_mib=args.memory_limit)


def _execute(args, root, jobs, record) -> int:
    """Run jobs, print each result and the summary, record them; the exit code of the batch."""
    started = time.perf_counter()
    outcome = run_jobs(jobs, args.jobs, args.threads, _limits(args), on_result=_show)
    results = outcome.results
    record(results)
    print()
    print(reports.format_results(results, time.perf_counter() - started))
    if outcome.interrupted:
        print(f"interrupted: {len(results)} done, {len(outcome.not_run)} not run "
              f"({', '.join(outcome.not_run)})", file=sys.stderr)
        return INTERRUPTED_EXIT
    failed = [r for r in results if not r.ok]
    for result in failed:
        seed = "" if result.seed is None else f" with seed {result.seed}"
        print(f"dlbook: {result.chapter} failed{seed}: {result.error}", file=sys.stderr)
    return 1 if failed else 0


def _run(args, root) -> int:
    chapters = resolve(root, args.chapters)
    if not args.seed and args.threads not in (None, BOOK_THREADS):
        raise DlbookError(f"the book's outputs are made, and compared by nbval, with {BOOK_THREADS} "
                          "threads per kernel; --threads applies to --seed runs only")
    if args.seed:
        jobs = [chapter_job(chapter, seed) for chapter in chapters for seed in args.seed]
        return _execute(args, root, jobs, record=lambda results: None)
    return _execute(args, root, [chapter_job(c) for c in chapters],
                    record=lambda results: reports.update_report(root, results))


def _sweep(args, root) -> int:
    chapters = resolve(root, args.chapters)
    seeds = parse_seeds(args.seeds)
    jobs = []
    for chapter in chapters:
        own = rules.book_seed(chapter)
        jobs += [chapter_job(chapter, seed) for seed in ([own] + [s for s in seeds if s != own])]
    return _execute(args, root, jobs, record=lambda results: reports.update_sweep(root, results))


def _list(args, root) -> int:
    report = reports.load(root, reports.REPORT_JSON)
    for chapter in resolve(root, args.chapters):
        synced = "synced" if drift(chapter) is None else "NOT SYNCED"
        executed = ("executed" if synced == "synced" and execution_problem(chapter) is None
                    else "NOT EXECUTED")
        entry = report["chapters"].get(chapter.stem)
        last = "never run"
        if entry and entry.get("finished"):
            when = datetime.fromisoformat(entry["finished"]).strftime("%Y-%m-%d %H:%M UTC")
            last = (f"last good run {when}: {entry['wall_s']:.1f} s, {entry['peak_mib']:.0f} MiB "
                    f"[{reports.entry_status(chapter, entry)}]")
        print(f"{chapter.stem:28} {synced:10} {executed:12} {last}  {chapter.title()}")
    return 0


def _check(args, root) -> int:
    """Every rule of CONTRIBUTING.md, on the committed book, without executing anything."""
    chapters = resolve(root, args.chapters)
    run_report = reports.load(root, reports.REPORT_JSON)
    sweep_report = reports.load(root, reports.SWEEP_JSON)
    problems = [p for chapter in chapters for p in rules.problems(chapter, run_report, sweep_report)]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(chapters)} chapter(s): in sync, executed, within budget, every rule holds, "
              "seed sweep passed")
    return 1 if problems else 0


def _assign(args, root) -> int:
    chapters = resolve(root, args.chapters)
    out = Path(args.out)
    for path in assign.write_student_versions(chapters, out):
        print(f"{path}: student version (solutions replaced by stubs, hidden tests removed)")
    return 0


def _grade(args, root) -> int:
    submissions = grade.check_submissions(args.submissions)
    chapter = grade.resolve_chapter(root, args.chapter)
    out = Path(args.out)

    def show(result):
        score = f"{result.total:g}/{result.max_total:g}" if result.exercises else "-"
        print(f"{result.submission}: {result.student}, {result.chapter or '?'}: {result.status}, "
              f"score {score}" + (f" — {result.message}" if result.message else ""), flush=True)

    jobs = grade.grade_jobs(submissions, root, chapter, out)
    outcome = run_jobs(jobs, args.jobs, args.threads, _limits(args), on_result=show)
    results = outcome.results
    grade.mark_duplicates(results)
    grade.write_results(results, root, out)
    print(f"gradebook: {out / 'gradebook.csv'} and {out / 'gradebook.json'}; "
          f"feedback: {out / 'feedback'}/; graded notebooks: {out / 'graded'}/")
    if outcome.interrupted:
        print(f"interrupted: {len(results)} graded, {len(outcome.not_run)} not graded "
              "(the gradebook holds the graded ones)", file=sys.stderr)
        return INTERRUPTED_EXIT
    return 1 if any(r.status == "grader error" for r in results) else 0


def _html(args, root) -> int:
    from dlbook.engine import html

    started = time.perf_counter()
    out = html.build_site(root, Path(args.out))
    pages = len(list(out.glob("*.html")))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(f"{out}/index.html: {pages} pages, {size:.1f} MiB, built in "
          f"{time.perf_counter() - started:.1f} s with no warnings")
    return 0


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}")
    return int(text)


def _add_execution_options(command, memory_mib: float = DEFAULT_MEMORY_LIMIT_MIB) -> None:
    command.add_argument("-j", "--jobs", type=_positive(int), default=1,
                         help="chapters run at once (default 1)")
    command.add_argument("--threads", type=_positive(int), default=None,
                         help=f"threads per kernel for seed runs and grading (default "
                         f"{BOOK_THREADS}; the book's own run always uses {BOOK_THREADS})")
    command.add_argument("--timeout", type=_positive(float), default=DEFAULT_CHAPTER_TIMEOUT,
                         metavar="S", help="stop a chapter after S seconds "
                         f"(default {DEFAULT_CHAPTER_TIMEOUT:.0f})")
    command.add_argument("--cell-timeout", type=_positive(float), default=DEFAULT_CELL_TIMEOUT,
                         metavar="S", help="stop a cell after S seconds "
                         f"(default {DEFAULT_CELL_TIMEOUT:.0f})")
    command.add_argument("--memory-limit", type=_positive(float), default=memory_mib,
                         metavar="MIB",
                         help=f"stop a kernel above MIB MiB of memory (default {memory_mib:.0f})")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, like every other dlbook error."""

    def error(self, message):
        raise DlbookError(message if self.prog == "dlbook" else f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlbook", description="Build and check the executable deep-learning book.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    names = {"nargs": "*", "metavar": "CHAPTER",
             "help": "chapter stem, number or slug (default: every chapter)"}

    sync = commands.add_parser("sync", help="chapters/*.md → notebooks/*.ipynb")
    sync.add_argument("chapters", **names)
    sync.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    sync.add_argument("--force", action="store_true", help="overwrite notebooks edited by hand")
    sync.set_defaults(handler=_sync)

    run = commands.add_parser("run", help="execute notebooks; report time and memory")
    run.add_argument("chapters", **names)
    _add_execution_options(run)
    run.add_argument("--seed", type=_non_negative_int, action="append", metavar="N",
                     help="run with DLBOOK_SEED=N instead, writing no notebook (repeatable)")
    run.set_defaults(handler=_run)

    sweep = commands.add_parser("sweep", help="run chapters with several seeds; write the "
                                "seed-sweep report")
    sweep.add_argument("chapters", **names)
    sweep.add_argument("--seeds", default=DEFAULT_SWEEP_SEEDS,
                       help="seeds besides each chapter's own, e.g. 0-3 or 1,5,9 "
                       f"(default {DEFAULT_SWEEP_SEEDS})")
    _add_execution_options(sweep)
    sweep.set_defaults(handler=_sweep)

    assigning = commands.add_parser("assign", help="write student versions (solutions stubbed, "
                                    "hidden tests removed; nbgrader-compatible)")
    assigning.add_argument("chapters", **names)
    assigning.add_argument("--out", default="build/student", metavar="DIR",
                           help="where to write them (default build/student)")
    assigning.set_defaults(handler=_assign)

    grading = commands.add_parser("grade", help="grade submitted student versions")
    grading.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                         help="notebooks to grade; the student is the file name "
                         "(alice.ipynb) or its folder (alice/01_workflow.ipynb)")
    grading.add_argument("--out", required=True, metavar="DIR",
                         help="gradebook.{csv,json}, feedback/, graded/ go here")
    grading.add_argument("--chapter", metavar="CHAPTER",
                         help="refuse submissions of any other chapter")
    _add_execution_options(grading, memory_mib=grade.DEFAULT_GRADING_MEMORY_MIB)
    grading.set_defaults(handler=_grade)

    site = commands.add_parser("html", help="build the website from the committed notebooks")
    site.add_argument("--out", default="build/html", metavar="DIR",
                      help="where to write it (default build/html)")
    site.set_defaults(handler=_html)

    listing = commands.add_parser("list", help="chapters with title, status and last run")
    listing.add_argument("chapters", **names)
    listing.set_defaults(handler=_list)

    check = commands.add_parser("check", help="every chapter rule, without executing anything")
    check.add_argument("chapters", **names)
    check.set_defaults(handler=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args, find_root())
    except DlbookError as error:
        print(f"dlbook: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:  # `dlbook list | head`: the reader has gone, nothing more to say
        sys.stderr.close()
        return 0
    except Exception as error:  # a bug in dlbook: still one line (DLBOOK_DEBUG=1 shows where)
        if os.environ.get("DLBOOK_DEBUG"):
            raise
        print(f"dlbook: internal error, please report it (DLBOOK_DEBUG=1 shows the traceback): "
              f"{type(error).__name__}: {error}", file=sys.stderr)
        return 3
