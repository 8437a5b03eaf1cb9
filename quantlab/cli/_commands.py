"""Registry of CLI subcommands: each feature module exposes click commands here."""

from __future__ import annotations

import importlib

import click

# Module path, attribute: one line per command (group). Missing modules are skipped so
# features can land one at a time.
_COMMANDS = [
    ("quantlab.cli.data", "data"),
    ("quantlab.cli.strategies", "strategies"),
    ("quantlab.cli.backtest", "backtest"),
    ("quantlab.cli.optimize", "optimize"),
    ("quantlab.cli.walkforward", "walkforward"),
    ("quantlab.cli.reports", "report"),
    ("quantlab.cli.reports", "runs"),
    ("quantlab.cli.reports", "compare"),
]


def all_commands() -> list[click.Command]:
    commands = []
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue
            raise
        commands.append(getattr(module, attr))
    return commands
