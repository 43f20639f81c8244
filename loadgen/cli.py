"""Command line: run, validate, mock. User errors become one line each and an exit code, here only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from loadgen import errors
from loadgen.errors import LoadgenError, UsageError


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadgen", description="Load tester for SageMaker real-time endpoints."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a scenario file")
    run.add_argument("scenario", type=Path)
    run.add_argument("--endpoint-url", help='"mock", or an http(s):// URL (overrides endpoint_url)')
    run.add_argument("--duration", help="e.g. 30s, 5m (replaces load.duration/requests)")
    run.add_argument(
        "--requests", type=_positive_int, help="number of requests (replaces load.duration)"
    )
    run.add_argument(
        "--rate", type=_positive_float, help="requests per second (arrival-rate executors)"
    )
    run.add_argument("--concurrency", type=_positive_int, help="callers (constant-concurrency)")
    run.add_argument(
        "--transport", choices=("fast", "botocore"), help="transport (overrides transport)"
    )
    run.add_argument("--workers", help='engine processes: a number or "auto" (CPU count)')
    run.add_argument(
        "--region", help="region to sign for when the scenario names none (else AWS_REGION, ...)"
    )
    run.add_argument(
        "--out", type=Path, default=Path("results"), help="parent folder of the run folder"
    )
    run.add_argument("--quiet", action="store_true", help="no live status and no table")
    run.add_argument(
        "--json", action="store_true", help="print summary.json to stdout instead of the table"
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="also print the Logs Insights query that finds the slowest requests",
    )

    validate = commands.add_parser(
        "validate", help="check a scenario file without sending anything"
    )
    validate.add_argument("scenario", type=Path)

    compare = commands.add_parser(
        "compare", help="compare two runs: is NEW slower than BASE beyond noise?"
    )
    compare.add_argument("base", type=Path, help="run folder, summary.json or .hlog")
    compare.add_argument("new", type=Path, help="run folder, summary.json or .hlog")
    compare.add_argument(
        "--max-regression",
        action="append",
        default=[],
        metavar="METRIC=PCT",
        help="e.g. p99=10%% (repeatable)",
    )
    compare.add_argument("--endpoint", help="compare only this endpoint label (or label/variant)")
    compare.add_argument(
        "--base-endpoint",
        metavar="LABEL",
        help="the base run's label to compare (with --new-endpoint)",
    )
    compare.add_argument(
        "--new-endpoint",
        metavar="LABEL",
        help="the new run's label to compare (with --base-endpoint)",
    )
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")

    report = commands.add_parser("report", help="(re)write report.html for a run folder")
    report.add_argument("run_dir", type=Path)

    mock = commands.add_parser("mock", help="serve the built-in mock SageMaker endpoint")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, help="default 8080 with --container, else 8081")
    mock.add_argument(
        "--container",
        action="store_true",
        help="serve the model container contract (/ping, /invocations)",
    )
    mock.add_argument(
        "--config",
        type=Path,
        help="YAML: a scenario file (its mock: section) or a mock section alone",
    )
    mock.add_argument("--access-key", help="verify SigV4 signatures made with this access key...")
    mock.add_argument("--secret-key", help="...and this secret key")
    mock.add_argument("--region", default="us-east-1")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {
        "--endpoint-url": args.endpoint_url,
        "--transport": args.transport,
        "--duration": args.duration,
        "--requests": args.requests,
        "--rate": args.rate,
        "--concurrency": args.concurrency,
        "--workers": args.workers,
    }


SELF_TIMED = {  # executors whose length is their own
    "capacity-search": "runs as many steps of load.step_duration as its search needs",
    "trace-replay": "runs for its trace (load.file)",
}


def _check_overrides(args: argparse.Namespace, executor: str) -> None:
    problems = []
    if args.rate is not None and executor != "constant-arrival-rate":
        problems.append(f"--rate: applies to the constant-arrival-rate executor, not {executor}")
    if args.concurrency is not None and executor != "constant-concurrency":
        problems.append(
            f"--concurrency: applies to the constant-concurrency executor, not {executor}"
        )
    if (args.duration or args.requests) and executor == "ramping-arrival-rate":
        problems.append(
            "--duration/--requests: ramping-arrival-rate runs for the sum of its stages"
        )
    if (args.duration or args.requests) and executor in SELF_TIMED:
        problems.append(f"--duration/--requests: {executor} {SELF_TIMED[executor]}")
    if problems:
        raise UsageError(problems)


def command_validate(args: argparse.Namespace) -> int:
    from loadgen.engine.requests import load_bodies
    from loadgen.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    load_bodies(scenario)
    print(f"{args.scenario}: ok ({len(scenario.endpoints)} endpoint(s), {scenario.load.executor})")
    return errors.EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    import uvloop
    from rich.console import Console

    from loadgen.console import print_summary, print_verdict
    from loadgen.engine.runner import RunOptions, run_scenario
    from loadgen.scenario import parse_yaml, scenario_from_dict

    path: Path = args.scenario
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    raw = parse_yaml(text, str(path))
    load = raw.get("load")
    if isinstance(load, dict) and isinstance(load.get("executor"), str):
        _check_overrides(args, load["executor"])
    scenario = scenario_from_dict(raw, _overrides(args), base_dir=path.parent, source=str(path))
    quiet = args.quiet or args.json
    result = uvloop.run(
        run_scenario(scenario, RunOptions(out=args.out, quiet=quiet, region=args.region))
    )
    if args.json:
        print(result.summary.to_json(), end="")
    elif not quiet:
        print_summary(result.summary, verbose=args.verbose)
    # the verdict is the last line, --quiet or not; beside --json's stdout, on stderr
    print_verdict(result.summary, result.folder, Console(stderr=args.json, highlight=False))
    return result.exit_code


def command_mock(args: argparse.Namespace) -> int:
    from loadgen.mock.config import MockConfig
    from loadgen.mock.server import serve
    from loadgen.scenario import parse_yaml

    settings: dict[str, object] = {}
    if args.config is not None:
        try:
            raw = parse_yaml(args.config.read_text(encoding="utf-8"), str(args.config))
        except OSError as exc:
            raise UsageError(
                f"--config: cannot read {args.config}: {exc.strerror or exc}"
            ) from None
        settings = dict(raw.get("mock", raw) if "endpoints" in raw or "mock" in raw else raw)
    if args.access_key or args.secret_key:
        settings.update(access_key=args.access_key, secret_key=args.secret_key)
    settings["region"] = args.region
    from pydantic import ValidationError

    try:
        config = MockConfig.model_validate(settings)
    except ValidationError as exc:
        raise UsageError(
            [
                f"mock.{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
        ) from None
    port = args.port if args.port is not None else (8080 if args.container else 8081)
    serve(config, args.host, port, container=args.container)
    return errors.EXIT_OK


def command_compare(args: argparse.Namespace) -> int:
    from loadgen.compare import compare_command

    return compare_command(
        args.base,
        args.new,
        args.max_regression,
        endpoint=args.endpoint,
        json_out=args.json,
        base_endpoint=args.base_endpoint,
        new_endpoint=args.new_endpoint,
    )


def command_report(args: argparse.Namespace) -> int:
    from loadgen.results.report import write_report

    print(write_report(args.run_dir))
    return errors.EXIT_OK


COMMANDS = {
    "report": command_report,
    "run": command_run,
    "validate": command_validate,
    "mock": command_mock,
    "compare": command_compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LoadgenError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return errors.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
