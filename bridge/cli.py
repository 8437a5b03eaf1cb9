"""The ``bridge`` command line (click group)."""

from __future__ import annotations

import click

from bridge import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bridge")
def cli() -> None:
    """Run quantlab strategy kernels live on Interactive Brokers (paper by default)."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bridge")
