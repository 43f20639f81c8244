"""Command line: run, validate, mock. User errors become one line each and an exit code, here only."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from loadgen import errors
from loadgen.errors import LoadgenError, UsageError
from loadgen.suggest import did_you_mean, keys_at


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0 (got {text!r})") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0 (got {text!r})") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _port(text: str) -> int:
    """A TCP port; 0 asks for any free one. (asyncio waited forever on 99999.)"""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535 (got {text!r})")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are UsageError: one line naming the flag, exit 2, no usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(argparse_problem(message, list(self.commands())))

    def options(self) -> list[str]:
        return [option for action in self._actions for option in action.option_strings]

    def commands(self) -> dict[str, _Parser]:
        """The subcommand parsers by name (none for a subcommand's own parser)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}


def argparse_problem(message: str, commands: Sequence[str] = ()) -> str:
    """argparse's message as `<flag or argument>: <problem>`, the shape of every other error."""
    message = " ".join(message.split())
    if match := re.fullmatch(r"the following arguments are required: (.+)", message):
        names = match[1]
        if names == "COMMAND" and commands:
            return f"COMMAND: required (one of {', '.join(commands)})"
        return f"{names}: required"
    if match := re.fullmatch(r"ambiguous option: (\S+?)(=.*)? could match (.+)", message):
        return f"{match[1]}: ambiguous, could be {match[3]}"
    if match := re.fullmatch(r"unrecognized arguments: (.+)", message):
        return unknown_argument(match[1].split())
    name, separator, problem = message.partition(": ")
    if not (separator and name.startswith("argument ")):
        return message
    name = name.removeprefix("argument ")
    if match := re.fullmatch(r"invalid choice: (.+) \(choose from (.+)\)", problem):
        choices = [choice.strip("'\"") for choice in match[2].split(", ")]
        given = match[1].strip("'\"")
        if name == "COMMAND":
            problem = f"unknown command {given!r}"
        else:
            problem = f"must be one of {', '.join(choices)}, not {given!r}"
        return name + ": " + problem + did_you_mean(given, choices)
    if problem == "expected one argument":
        problem = "needs a value"
    elif match := re.fullmatch(r"ignored explicit argument (.+)", problem):
        problem = f"takes no value (got {match[1]})"
    elif match := re.fullmatch(r"invalid \S+ value: (.+)", problem):
        problem = f"invalid value {match[1]}"
    return f"{name}: {problem}"


def unknown_argument(extras: list[str], options: Sequence[str] = ()) -> str:
    """One line for the first argument nobody took; a close flag is suggested."""
    first = extras[0]
    if not first.startswith("-"):
        return f"{first}: unexpected argument"
    flag = first.partition("=")[0]
    return f"{flag}: unknown option" + did_you_mean(flag, options, quote=False)


def package_version() -> str:
    """The installed distribution's version; a checkout that was never installed has pyproject's."""
    from importlib import metadata

    try:
        return metadata.version("loadgen")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            with pyproject.open("rb") as file:
                return str(tomllib.load(file)["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


class _VersionAction(argparse.Action):
    """--version; looked up only when asked, since importlib.metadata costs ~40 ms per start."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> NoReturn:
        print(f"loadgen {package_version()}")
        parser.exit()


# Examples shown under each --help; tests parse every `loadgen ...` line of them.
MAIN_EXAMPLES = """\
examples:
  loadgen validate scenarios/quickstart.yaml
  loadgen run scenarios/quickstart.yaml --duration 30s
  loadgen run my-endpoint.yaml --endpoint-url https://runtime.sagemaker.eu-west-1.amazonaws.com
  loadgen compare results/before results/after --max-regression p99=10%
  loadgen mock --port 8081

exit codes: 0 passed, 1 a threshold or comparison failed, 2 bad usage or scenario,
3 the run could not be carried out, 130 interrupted
"""
RUN_EXAMPLES = """\
examples:
  loadgen run scenarios/quickstart.yaml
  loadgen run scenarios/quickstart.yaml --duration 2m --rate 500 --workers auto
  loadgen run scenarios/ci-gate.yaml --requests 1000 --quiet --out ci-results
  loadgen run scenarios/ci-gate.yaml --endpoint-url http://127.0.0.1:8081 --transport botocore
  loadgen run scenarios/quickstart.yaml --duration 10s --json > summary.json
  loadgen run scenarios/quickstart.yaml --workers 4 --ray local
"""
VALIDATE_EXAMPLES = """\
examples:
  loadgen validate scenarios/quickstart.yaml
  loadgen validate scenarios/ramp-knee.yaml

Checks the file and its body files, then prints the plan: endpoint URL, executor, expected
requests and duration, transport, workers, connections, timeout, correlation, and the
defaults applied for keys the file does not set.
"""
COMPARE_EXAMPLES = """\
examples:
  loadgen compare results/ab-20261128T120000Z results/ab-20261128T130000Z
  loadgen compare before/summary.json after/summary.json --max-regression p99=10% --max-regression p50=5%
  loadgen compare before/churn-v1.hlog after/churn-v1.hlog --json
  loadgen compare results/before results/after --endpoint churn-v2/canary
  loadgen compare results/ab results/ab --base-endpoint churn-v2/blue --new-endpoint churn-v2/green
  loadgen compare results/llm-before results/llm-after --metric ttft --max-regression p99=10%
"""
MOCK_EXAMPLES = """\
examples:
  loadgen mock
  loadgen mock --config scenarios/quickstart.yaml --port 9000
  loadgen mock --access-key AKIDEXAMPLE --secret-key example-secret --region eu-west-1
  loadgen mock --container

then, in another shell:
  loadgen run scenarios/quickstart.yaml --endpoint-url http://127.0.0.1:8081
"""


def build_parser() -> _Parser:
    from loadgen.scenario import CompareMetric  # every command loads pydantic anyway

    parser = _Parser(
        prog="loadgen",
        description="Load tester for SageMaker real-time endpoints.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a scenario file",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        "--busy-poll",
        action="store_const",
        const=True,
        help="the engines' event loops never sleep while the schedule runs (sets busy_poll)",
    )
    run.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="the workers as Ray actors: auto, HOST:PORT, ray://HOST:10001, or local "
        "(needs loadgen[ray]; sets cluster.address)",
    )
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
        "validate",
        help="check a scenario file without sending anything",
        epilog=VALIDATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("scenario", type=Path)
    validate.add_argument(
        "--region", help="region to sign for when the scenario names none, as for run"
    )

    compare = commands.add_parser(
        "compare",
        help="compare two runs: is NEW slower than BASE beyond noise?",
        epilog=COMPARE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    compare.add_argument(
        "--metric",
        choices=[metric.value for metric in CompareMetric],
        default=CompareMetric.LATENCY.value,
        help="what to compare: latency (default), or a streaming run's ttft, itl or tpot",
    )
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")

    report = commands.add_parser("report", help="(re)write report.html for a run folder")
    report.add_argument("run_dir", type=Path)

    mock = commands.add_parser(
        "mock",
        help="serve the built-in mock SageMaker endpoint",
        epilog=MOCK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=_port, help="default 8080 with --container, else 8081")
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
        "--busy-poll": args.busy_poll,
        "--ray": args.ray,
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


def _check_run_flags(args: argparse.Namespace) -> None:
    """Flags that are wrong whatever the scenario says; checked before the file is read."""
    problems = []
    if args.duration is not None and args.requests is not None:
        problems.append("--duration, --requests: give one or the other, not both")
    out: Path = args.out
    existing = next((path for path in (out, *out.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == out else f" (in {out})"
        problems.append(f"--out: {existing} is a file, not a folder{where}")
    if problems:
        raise UsageError(problems)


def command_validate(args: argparse.Namespace) -> int:
    from loadgen.engine.requests import load_bodies
    from loadgen.plan import plan_of
    from loadgen.region import resolve_region
    from loadgen.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    load_bodies(scenario)
    region = resolve_region(scenario, args.region)
    print(f"{args.scenario}: ok ({len(scenario.endpoints)} endpoint(s), {scenario.load.executor})")
    print("\n".join(plan_of(scenario, region).lines()))
    return errors.EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    import uvloop
    from rich.console import Console

    from loadgen.console import print_summary, print_verdict
    from loadgen.engine.runner import RunOptions, run_scenario
    from loadgen.scenario import parse_yaml, scenario_from_dict

    _check_run_flags(args)
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
        section = raw.get("mock", raw) if "endpoints" in raw or "mock" in raw else raw
        if not isinstance(section, dict):
            raise UsageError(f"--config: {args.config}: mock must be a mapping of mock settings")
        settings = dict(section)
    if args.access_key or args.secret_key:
        settings.update(access_key=args.access_key, secret_key=args.secret_key)
    settings["region"] = args.region
    from pydantic import ValidationError

    try:
        config = MockConfig.model_validate(settings)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            message = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":  # as in a scenario: the closest key it allows
                *parents, key = e["loc"]
                message = "unknown key" + did_you_mean(str(key), keys_at(MockConfig, parents))
            problems.append(f"mock.{'.'.join(str(p) for p in e['loc'])}: {message}")
        raise UsageError(problems) from None
    port = args.port if args.port is not None else (8080 if args.container else 8081)
    serve(config, args.host, port, container=args.container)
    return errors.EXIT_OK


def command_compare(args: argparse.Namespace) -> int:
    from loadgen.compare import compare_command
    from loadgen.scenario import CompareMetric

    return compare_command(
        args.base,
        args.new,
        args.max_regression,
        endpoint=args.endpoint,
        json_out=args.json,
        base_endpoint=args.base_endpoint,
        new_endpoint=args.new_endpoint,
        metric=CompareMetric(args.metric),
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed command line; UsageError names the first flag or argument that is wrong."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        raise UsageError(unknown_argument(extras, parser.commands()[args.command].options()))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
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
