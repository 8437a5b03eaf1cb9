"""The ``quantlab`` command line: a click group whose subcommands live one per module.

Command modules only parse options, call one public function and print the result;
heavy imports happen inside the commands so ``quantlab --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from quantlab import __version__
from quantlab.errors import QuantlabError


class QuantlabGroup(click.Group):
    """Click group that turns :class:`QuantlabError` into a message and exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QuantlabError as err:
            click.secho(f"Error: {err}", err=True, fg="red")
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            click.secho("Interrupted.", err=True, fg="yellow")
            ctx.exit(130)


@click.group(cls=QuantlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="quantlab")
def cli() -> None:
    """quantlab: sweep, walk forward and report on Numba strategy kernels.

    Data lives in an HDF5 store (default data/market.h5, override with --store or
    QUANTLAB_STORE); results go to reports/<run_id>/.
    """


def _register() -> None:
    from quantlab.cli import _commands

    for command in _commands.all_commands():
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    from quantlab import _preload

    _preload.SKIP_OPTIONAL = ("quantstats",)  # see quantlab._preload: faster start, same results
    cli(prog_name="quantlab")


if __name__ == "__main__":  # pragma: no cover
    main()
