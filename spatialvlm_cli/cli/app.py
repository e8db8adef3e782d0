"""The `spatialvlm` command: a thin shell over the library. Heavy imports happen inside command bodies."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # typer vendors click (0.29)
from typer.core import TyperGroup

from spatialvlm_cli.cli import environment
from spatialvlm_cli.cli.console import TerminalHandler, terminal
from spatialvlm_cli.errors import error_line

# Before any command imports torch: its OpenMP runtime reads the variable when it loads (see environment.py).
environment.default_thread_waiting()


class SpatialVLMGroup(TyperGroup):
    """Every failure ends as one line on stderr: a `SpatialVLMError` (bad input, flag or model) or any other error
    raised below a command exits 1, a usage error (unknown flag, missing or mistyped value) exits 2 as Click's do,
    Ctrl-C exits 130. SPATIALVLM_DEBUG=1 lets errors through with their traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except KeyboardInterrupt as interrupt:
            hint = str(interrupt)
            _fail(f"interrupted{f'; {hint}' if hint else ''}")
            ctx.exit(130)
        except Exception as error:
            if environment.debug():
                raise
            _fail(f"{error_line(error)} (set SPATIALVLM_DEBUG=1 for a traceback)")
            ctx.exit(1)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Click's main, with usage errors as one line (and the command's --help named) instead of a box."""
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                                **extra)
        except NoArgsIsHelpError as error:
            if error.ctx is not None:
                terminal.err.print(error.ctx.get_help(), markup=False, highlight=False)
            code = 0
        except UsageError as error:
            where = error.ctx.command_path if error.ctx else "spatialvlm"
            _fail(f"{error.format_message()} (usage error; see '{where} --help')")
            code = error.exit_code
        except ClickException as error:
            _fail(error.format_message())
            code = error.exit_code
        except typer.Abort:
            _fail("interrupted")
            code = 130
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str) -> None:
    terminal.close_open_line()
    terminal.err.print(f"error: {message}", markup=False, highlight=False)


def _version(value: bool) -> None:
    if value:
        from spatialvlm_cli import __version__

        terminal.out.print(f"spatialvlm {__version__}", markup=False)
        raise typer.Exit()


app = typer.Typer(
    cls=SpatialVLMGroup,
    name="spatialvlm",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    help="Inference and evaluation of point-cloud and panorama VLMs with swappable positional encodings.",
)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """spatialvlm: point-cloud and panorama VLM inference and evaluation with swappable positional encodings.

    Run `spatialvlm COMMAND --help` for a command's flags and examples. Errors are one line on stderr: exit code 1
    for bad input, 2 for a usage error (unknown flag, missing or mistyped value), 130 for Ctrl-C.
    """
    _setup_logging()


def _setup_logging() -> None:
    """Warnings go to stderr through the shared console (above a live progress bar or spinner, never onto it)."""
    import logging

    handler = TerminalHandler(console=terminal.err, show_time=False, show_path=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler], force=True)


def _register_commands() -> None:
    from spatialvlm_cli.cli import check, infer, plot, train, view
    from spatialvlm_cli.cli import eval as eval_cli
    from spatialvlm_cli.cli import export as export_cli
    from spatialvlm_cli.cli.options import PanelledCommand

    app.command(name="infer", no_args_is_help=True, cls=PanelledCommand)(infer.infer)
    app.command(name="eval", no_args_is_help=True)(eval_cli.eval_command)
    app.command(name="plot", no_args_is_help=True)(plot.plot_command)
    app.command(name="view", no_args_is_help=True)(view.view_command)
    app.command(name="export", no_args_is_help=True)(export_cli.export_command)
    app.command(name="check")(check.check_command)
    app.command(name="train", no_args_is_help=True, cls=PanelledCommand)(train.train_command)


_register_commands()


def main() -> None:
    app(prog_name="spatialvlm")


if __name__ == "__main__":
    sys.exit(main())
