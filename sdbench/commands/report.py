"""`sdbench report RESULTS... --out DIR`: write the static HTML site or a markdown summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """examples:
  sdbench report --out reports/latest  ./results as an HTML site (index.html)
  sdbench report --results results/RUN.parquet --format markdown --out -
                                       a markdown summary on stdout
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a static HTML report (or markdown summary) of result files",
        description="Write a self-contained HTML site (index.html, results.parquet, results.csv) "
        "or, with --format markdown, a markdown summary for READMEs and pull requests.",
    )
    from sdbench.commands.output import add_results_option

    add_results_option(parser, positional=True)
    parser.add_argument(
        "--out", required=True, help='output folder (HTML) or file (markdown; "-" for stdout)'
    )
    parser.add_argument("--format", choices=("html", "markdown"), default="html")
    parser.add_argument("--title", help="page title (default: the suite names)")
    parser.add_argument(
        "--baseline-machine",
        metavar="MACHINE",
        help="Machines section: the machine others are compared with (a label such as "
        "h100-80gb-hbm3·node3, or the first digits of a machine_id; default: the one with the "
        "most ok cells)",
    )
    parser.add_argument(
        "--anonymise-hosts",
        action="store_true",
        help="replace every host name, in every file written (Parquet and CSV too), with a "
        "stable pseudonym, for publishing",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from sdbench.atomic import write_atomic
    from sdbench.commands.output import results_paths
    from sdbench.store import read_results
    from sdbench.store.files import output_error

    frame = read_results(results_paths(args))
    if args.anonymise_hosts:
        from sdbench.machine import anonymise_hosts

        frame = anonymise_hosts(frame)
    if args.format == "markdown":
        from sdbench.report.markdown import markdown_report

        text = markdown_report(frame, args.title, args.baseline_machine)
        if args.out == "-":
            sys.stdout.write(text)
            return 0
        out = Path(args.out)
        path = out if out.suffix == ".md" else out / "report.md"
        try:
            write_atomic(path, text.encode("utf-8"))
        except OSError as error:
            raise output_error(path, error) from None
        print(path)
        return 0
    from sdbench.report.site import write_site

    print(write_site(frame, args.out, args.title, args.baseline_machine))
    return 0
