"""``quantlab strategies``: list strategies and their parameters."""

from __future__ import annotations

import click

from quantlab.errors import StrategyError


@click.command("strategies")
@click.argument("name", required=False)
def strategies(name: str | None) -> None:
    """List the strategies in research/ with their parameters (or show one)."""
    from quantlab.engine.registry import get_strategy, list_strategies

    errors: list[StrategyError] = []
    specs = [get_strategy(name)] if name else list_strategies(errors)
    for spec in specs:
        click.secho(spec.name, bold=True)
        for line in spec.doc.splitlines():
            click.echo(f"  {line}")
        click.echo(f"  inputs: {', '.join(spec.inputs)}; lookback: {spec.lookback}")
        if spec.constraints:
            click.echo(f"  constraints: {'; '.join(spec.constraints)}")
        for p in spec.params:
            step = f", step {p.step:g}" if p.step else ""
            click.echo(
                f"    {p.name:<13} {p.kind:<5} default {p.default:<8g} range [{p.low:g}, {p.high:g}{step}]  {p.doc}"
            )
        click.echo("")
    for err in errors:
        click.secho(f"Error: {err}", err=True, fg="red")
    if errors:
        raise SystemExit(1)
