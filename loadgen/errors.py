"""Errors a user can cause, each mapped to one exit code at the CLI."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3
EXIT_INTERRUPTED = 130


class LoadgenError(Exception):
    """Base of the project's own errors; `problems` are printed one per line."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ScenarioError(LoadgenError):
    """The scenario file or an override is invalid (exit 2)."""


class UsageError(LoadgenError):
    """A command-line flag or argument is invalid (exit 2)."""


class CannotRunError(LoadgenError):
    """The run could not be carried out, e.g. no endpoint reachable (exit 3)."""

    exit_code = EXIT_CANNOT_RUN
