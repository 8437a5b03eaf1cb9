"""The ``quantlab`` command line: a click group whose subcommands live one per module.

Command modules only parse options, call one public function and print the result;
heavy imports happen inside the commands so ``quantlab --help`` stays fast.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings
from pathlib import Path
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
    from quantlab._startup import preload as _preload
    from quantlab.engine.intervals import ShortSampleWarning
    from quantlab.engine.settings import InertSettingWarning

    _preload.SKIP_OPTIONAL = ("quantstats",)  # see quantlab._startup.preload: faster start, same results
    # the commands print short-sample and inert-setting notes next to the numbers; the Python warning would repeat them
    warnings.simplefilter("ignore", ShortSampleWarning)
    warnings.simplefilter("ignore", InertSettingWarning)
    try:
        cli(prog_name="quantlab")
    except SystemExit as stop:
        _exit_without_teardown(stop.code)
        raise


def _exit_without_teardown(code: Any) -> None:
    """End the process now, skipping the interpreter's teardown of every loaded module.

    After a run has imported vectorbt, scipy, plotly and numba, tearing the interpreter
    down takes most of a second and does nothing useful: every file quantlab writes is
    closed (and fsynced) before the command returns. atexit handlers still run (logging,
    loky, optuna) and the standard streams are flushed. Only done when this process *is*
    the CLI (not when ``main`` is called from other code) and no non-daemon thread is
    still running; ``QUANTLAB_FULL_EXIT=1`` turns it off.
    """
    if os.environ.get("QUANTLAB_FULL_EXIT") or Path(sys.argv[0]).name not in ("quantlab", "__main__.py"):
        return
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): print it like the interpreter would
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
