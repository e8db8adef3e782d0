"""The `spatialvlm` command: a thin shell over the library. Heavy imports happen inside command bodies."""

from __future__ import annotations

import os
import sys

import click
import typer
from typer.core import TyperGroup

from spatialvlm_cli.errors import SpatialVLMError


class SpatialVLMGroup(TyperGroup):
    """Turns a `SpatialVLMError` raised anywhere below a command into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SpatialVLMError as error:
            if os.environ.get("SPATIALVLM_DEBUG") == "1":
                raise
            click.echo(f"error: {error} (set SPATIALVLM_DEBUG=1 for a traceback)", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)


app = typer.Typer(
    cls=SpatialVLMGroup,
    name="spatialvlm",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Inference and evaluation of point-cloud and panorama VLMs with swappable positional encodings.",
)


def _register_commands() -> None:
    from spatialvlm_cli.cli import infer

    app.command(name="infer", no_args_is_help=True)(infer.infer)


_register_commands()


def main() -> None:
    app(prog_name="spatialvlm")


if __name__ == "__main__":
    sys.exit(main())
