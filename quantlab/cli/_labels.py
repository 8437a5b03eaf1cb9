"""The labelled headline and the overfitting verdict, as the research commands print them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from quantlab.runs.headline import returns_basis, sentence, windows
from quantlab.runs.verdict import run_verdicts, worst


def echo_headline(summary: Mapping[str, Any]) -> None:
    """One line per window the run reports on, headline first, each with its dates and basis."""
    basis = returns_basis(summary)
    for i, window in enumerate(windows(summary)):
        click.secho(("Headline " if i == 0 else "         ") + sentence(window, basis), bold=i == 0)


def echo_verdict(summary: Mapping[str, Any]) -> None:
    """``Verdict: likely overfit: PBO 0.53, DSR 0.70`` (per symbol when there are several)."""
    verdicts = run_verdicts(summary)
    if not verdicts:
        return
    overall = worst(verdicts.values())
    colour = {"red": "red", "amber": "yellow", "green": "green"}.get(overall.grade or "", None)
    if len(verdicts) == 1:
        click.secho(f"Verdict: {overall.sentence}", fg=colour, bold=True)
        return
    click.secho(f"Verdict: {overall.label} (worst symbol)", fg=colour, bold=True)
    for symbol, v in verdicts.items():
        click.echo(f"  {symbol}: {v.sentence}")
