"""The `spatialvlm` command: a thin shell over the library. Heavy imports happen inside command bodies."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from spatialvlm_cli.errors import SpatialVLMError


class SpatialVLMGroup(TyperGroup):
    """Turns a `SpatialVLMError` raised anywhere below a command into one line on stderr and exit code 1."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except SpatialVLMError as error:
            if os.environ.get("SPATIALVLM_DEBUG") == "1":
                raise
            typer.echo(f"error: {error} (set SPATIALVLM_DEBUG=1 for a traceback)", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            typer.echo("error: interrupted", err=True)
            ctx.exit(130)


app = typer.Typer(
    cls=SpatialVLMGroup,
    name="spatialvlm",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Inference and evaluation of point-cloud and panorama VLMs with swappable positional encodings.",
)


@app.callback()
def root() -> None:
    """spatialvlm: point-cloud and panorama VLM inference and evaluation with swappable positional encodings.

    Run `spatialvlm COMMAND --help` for a command's flags and examples.
    """
    _setup_logging()


def _setup_logging() -> None:
    """Warnings and progress go to stderr through rich; results go to stdout."""
    import logging

    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler], force=True)


def _register_commands() -> None:
    from spatialvlm_cli.cli import check, infer, plot
    from spatialvlm_cli.cli import eval as eval_cli

    app.command(name="infer", no_args_is_help=True)(infer.infer)
    app.command(name="eval", no_args_is_help=True)(eval_cli.eval_command)
    app.command(name="plot", no_args_is_help=True)(plot.plot_command)
    app.command(name="check")(check.check_command)


_register_commands()


def main() -> None:
    app(prog_name="spatialvlm")


if __name__ == "__main__":
    sys.exit(main())
