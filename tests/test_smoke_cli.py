"""Entry points exist and print their help."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from bridge.cli import cli as bridge_cli
from quantlab.cli import cli as quantlab_cli


def test_quantlab_help_lists_commands() -> None:
    result = CliRunner().invoke(quantlab_cli, ["--help"])
    assert result.exit_code == 0
    assert "quantlab" in result.output


def test_bridge_help() -> None:
    result = CliRunner().invoke(bridge_cli, ["--help"])
    assert result.exit_code == 0
    assert "Interactive Brokers" in result.output


def test_python_dash_m_quantlab() -> None:
    proc = subprocess.run([sys.executable, "-m", "quantlab", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout


def test_the_cli_exit_keeps_exit_codes_and_flushes_output() -> None:
    """The CLI ends without interpreter teardown (quantlab.cli._exit_without_teardown):
    exit codes and everything printed survive it."""
    ok = subprocess.run([sys.executable, "-m", "quantlab", "strategies"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert all(name in ok.stdout for name in ("sma_cross", "ema_cross", "rsi_reversion", "donchian_atr", "tsmom_vol"))
    bad = subprocess.run(
        [sys.executable, "-m", "quantlab", "optimize", "--strategy", "sma_crosss", "--symbols", "SPY"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode not in (0, None)
    assert "unknown strategy 'sma_crosss'" in bad.stderr and "sma_cross" in bad.stderr
