"""Issue 10 follow-up: TPE learns from trials that never trade. They are told to optuna as
complete but infeasible (``Trial.set_constraint``, optuna >= 5), so TPE steers away from the
dead region, while they stay unranked and reported. rsi_reversion's full default space on SPY
is mostly dead: most of 300 trials never traded when they were told as FAILED."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna

import quantlab

RSI = dict(method="tpe", seed=7, save=False, metric="sharpe")


def test_idle_trials_steer_tpe_away_and_are_still_reported(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = quantlab.optimize(
        "rsi_reversion",
        "SPY",
        trials=120,
        storage=f"sqlite:///{db}",  # type: ignore[arg-type]
        study="rsi",
        **RSI,
    )
    study = result.summary["study"]
    objective = study["objective"]  # one entry per trial; None: never a number to rank by
    idle_trials = sum(x is None for x in objective)
    assert study["trials"] == 120 and 0 < idle_trials < 60, f"{idle_trials} of 120 trials never traded"  # was 101
    idle = result.results["n_orders"] == 0
    assert len(result.results) == 120 - study["repeated_trials"] and idle.any()  # each set reported once
    assert not result.ranking.loc[result.ranking["n_orders"] == 0, "passes"].any()
    assert result.ranking[result.ranking["passes"]].iloc[0]["n_orders"] > 0
    trials = optuna.load_study(study_name="rsi", storage=f"sqlite:///{db}").trials
    infeasible = [t for t in trials if t.constraints.get("symbols_without_trades", 0) > 0]
    assert len(infeasible) == idle_trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE and t.value == -np.inf for t in infeasible)
    idle_sets = {tuple(float(t.params[n]) for n in ("period", "entry", "exit")) for t in infeasible}
    assert idle_sets == set(map(tuple, result.results.loc[idle, ["period", "entry", "exit"]].to_numpy().tolist()))
