"""``guardstream bench NAME``: one JSON line of figures on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import functools
from types import ModuleType
from typing import Any

from worker.bench import BENCHMARKS, load


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmarks: guardstream vs a baseline in the same run, one JSON line each",
        description="Each benchmark prints one JSON line (figures, baseline, ratio, machine) "
        "on stdout and its progress on stderr. Those using Kafka and S3 read the "
        'connection settings from GUARDSTREAM_* (eval "$(scripts/services env)").',
    )
    names = parser.add_subparsers(dest="benchmark", required=True, metavar="NAME")
    for name in BENCHMARKS:
        module = load(name)
        child = names.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(child)
        child.add_argument(
            "--log-level",
            default="WARNING",
            choices=("DEBUG", "INFO", "WARNING", "ERROR"),
            help="the worker's log level during the run (default WARNING)",
        )
        child.set_defaults(handler=functools.partial(run, module))


def run(module: ModuleType, args: argparse.Namespace) -> int:
    from worker.bench.report import configure_quiet_logging, emit

    configure_quiet_logging(args.log_level)
    result = module.run(args)
    for line in result if isinstance(result, list) else [result]:  # a list: one line each
        emit(line)
    return 0
