"""Expected failures: each says what went wrong and the command that fixes it."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """An expected failure. `fix` is the command or option that resolves it. Exit code 1;
    2 stays click's own for a malformed command line."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.fix = fix

    def format_message(self) -> str:
        if self.fix:
            return f"{self.message}\nfix: {self.fix}"
        return self.message

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)
