"""Configuration: defaults, TOML < environment < flags, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import Secret, load_config, resolve_secret
from bridge.errors import BridgeConfigError
from quantlab.engine.settings import Costs, Sizing

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bridge.toml"
    p.write_text(text)
    return p


def test_defaults() -> None:
    cfg = load_config(env={})
    assert cfg.mode == "paper" and not cfg.dry_run
    assert (cfg.gateway.host, cfg.gateway.port) == ("127.0.0.1", 4002)
    assert cfg.risk.max_position_pct == 0.10 and cfg.risk.max_positions == 5 and cfg.risk.daily_loss_limit_pct == 0.02
    assert cfg.sizing.mode == "fraction" and cfg.sizing.value == 0.10
    assert cfg.ledger.synchronous == "FULL" and cfg.reconcile.on_mismatch == "halt"
    assert cfg.sim_config().sizing.value == 0.10


def test_sizing_and_costs_are_the_engines_own_types(tmp_path: Path) -> None:
    """One definition and one validation: [sizing]/[costs] load straight into quantlab's types."""
    cfg = load_config(write(tmp_path, "[sizing]\nmode = 'cash'\nvalue = 5000\n[costs]\nslippage_bps = 2.5\n"), env={})
    assert type(cfg.sizing) is Sizing and type(cfg.costs) is Costs
    assert (cfg.sizing.mode, cfg.sizing.value, cfg.costs.slippage_bps) == ("cash", 5000.0, 2.5)
    sim = cfg.sim_config()
    assert sim.sizing is cfg.sizing and sim.costs is cfg.costs
    with pytest.raises(BridgeConfigError, match=r"invalid \[costs\]: cost setting per_share"):
        load_config(write(tmp_path, "[costs]\nper_share = -1\n"), env={})


def test_the_example_file_loads_and_matches_the_defaults() -> None:
    cfg = load_config(ROOT / "bridge.example.toml", env={})
    default = load_config(env={})
    assert cfg.risk == default.risk and cfg.gateway == default.gateway and cfg.orders == default.orders
    assert cfg.strategy.name == "sma_cross" and cfg.strategy.symbols == ("SPY", "QQQ")


def test_precedence_toml_then_env_then_flags(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[gateway]\nport = 4001\nclient_id = 3\n[strategy]\nname = "sma_cross"\nparams = { fast = 10, slow = 30 }\n',
    )
    cfg = load_config(path, env={})
    assert (cfg.gateway.port, cfg.gateway.client_id, cfg.strategy.params) == (4001, 3, "fast=10,slow=30")
    cfg = load_config(path, env={"BRIDGE_GATEWAY_PORT": "4100", "BRIDGE_RISK_MAX_POSITIONS": "3"})
    assert (cfg.gateway.port, cfg.risk.max_positions) == (4100, 3)
    cfg = load_config(
        path, env={"BRIDGE_GATEWAY_PORT": "4100"}, overrides={"gateway": {"port": 4200, "client_id": None}}
    )
    assert (cfg.gateway.port, cfg.gateway.client_id) == (4200, 3)
    assert cfg.sources == ("defaults", str(path), "environment", "flags")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[gateway]\nprot = 4002\n", "unknown key 'prot' in \\[gateway\\].*did you mean port"),
        ("[risks]\nmax_positions = 3\n", "unknown section \\[risks\\].*did you mean risk"),
        ("modee = 'paper'\n", "unknown top-level key"),
        ("[risk]\nmax_position_pct = -0.1\n", "negative or zero limits are not allowed"),
        ("[risk]\nmax_positions = 0\n", "max_positions must be >= 1"),
        ("[risk]\nmax_loss_per_trade = -5.0\n", "max_loss_per_trade must be >= 0"),
        ("[risk]\nrequire_stop = 'maybe'\n", "risk.require_stop must be bool"),
        ("[risk]\ndaily_loss_limit_pct = 0\n", "daily_loss_limit_pct must be a positive number"),
        ("[risk]\nmax_order_notional = 'lots'\n", "risk.max_order_notional must be float"),
        ("[orders]\ntype = 'stop'\n", "orders.type must be market or limit"),
        ("[gateway]\nport = 70000\n", "gateway.port must be 1..65535"),
        ("[reconcile]\ncheck_every = 1\n", "reconcile.check_every must be 5..3600 seconds"),
        ("[strategy]\nbar = '2d'\n", "strategy.bar must be one of"),
        ("[sizing]\nmode = 'kelly'\n", "unknown sizing mode"),
        ("[notify]\nsmtp_password = 'hunter2'\n", "secrets are not read from the config file"),
        ("mode = 'yolo'\n", "unknown mode"),
        ("[gateway\nport = 1\n", "cannot parse"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_message(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(BridgeConfigError, match=match) as info:
        load_config(write(tmp_path, text), env={})
    assert "hunter2" not in str(info.value)


def test_missing_file_and_bad_env(tmp_path: Path) -> None:
    with pytest.raises(BridgeConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(BridgeConfigError, match="unknown setting in environment variable BRIDGE_RISK_MAX_POSITION"):
        load_config(env={"BRIDGE_RISK_MAX_POSITION": "3"})
    with pytest.raises(BridgeConfigError, match="gateway.port must be int"):
        load_config(env={"BRIDGE_GATEWAY_PORT": "four"})
    # secrets and test hooks in the environment are not configuration keys
    assert load_config(env={"BRIDGE_SMTP_PASSWORD": "x", "BRIDGE_TEST_CRASH_AFTER_PLACE": "1"}).mode == "paper"


def test_secrets_come_from_env_or_file_and_never_print(tmp_path: Path) -> None:
    secret = resolve_secret("MY_PW", "", {"MY_PW": "s3cr3t-value"})
    assert isinstance(secret, Secret) and secret.reveal() == "s3cr3t-value"
    assert "s3cr3t" not in repr(secret) and "s3cr3t" not in str(secret) and "s3cr3t" not in f"{secret}"
    f = tmp_path / "token.secret"
    f.write_text("tok-123\n")
    assert resolve_secret("", str(f)).reveal() == "tok-123"  # type: ignore[union-attr]
    assert resolve_secret("UNSET_VAR", "", {}) is None
    with pytest.raises(BridgeConfigError, match="cannot read the secret file"):
        resolve_secret("", str(tmp_path / "missing.secret"))


def test_the_engines_newer_cost_keys_load_from_toml_and_environment(tmp_path: Path) -> None:
    """[costs] is quantlab's Costs: its spread, SEC/TAF and borrow keys are config keys too."""
    cfg = load_config(
        write(tmp_path, "[costs]\nspread_bps = { spy = 1.5, QQQ = 2 }\nsec_fee_rate = 0.0000278\n"), env={}
    )
    assert cfg.costs.spread_bps == {"SPY": 1.5, "QQQ": 2.0} and cfg.costs.sec_fee_rate == 0.0000278
    assert load_config(env={"BRIDGE_COSTS_SPREAD_BPS": "SPY=1.0"}).costs.spread_bps == {"SPY": 1.0}
    with pytest.raises(BridgeConfigError, match="costs.spread_bps must be a table of symbol = number"):
        load_config(env={"BRIDGE_COSTS_SPREAD_BPS": "SPY"})
