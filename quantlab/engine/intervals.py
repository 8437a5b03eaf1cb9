"""Bar intervals: pandas frequency and bars per year (one place for annualisation).

US equities trade 252 sessions a year of 6.5 hours, so a year has 252 daily bars,
1,638 hourly bars (6.5 per session) and 98,280 one-minute bars. vectorbt is told the
same through ``freq`` and ``year_freq = freq * bars_per_year``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from quantlab.errors import ParameterError

SESSIONS_PER_YEAR = 252
SESSION_MINUTES = 390


@dataclass(frozen=True)
class Interval:
    """A bar interval such as ``1d`` or ``5m``."""

    name: str
    minutes: int  # 0 for daily

    @property
    def freq(self) -> pd.Timedelta:
        return pd.Timedelta(days=1) if self.minutes == 0 else pd.Timedelta(minutes=self.minutes)

    @property
    def bars_per_year(self) -> float:
        if self.minutes == 0:
            return float(SESSIONS_PER_YEAR)
        return SESSIONS_PER_YEAR * SESSION_MINUTES / self.minutes

    @property
    def year_freq(self) -> pd.Timedelta:
        return self.freq * self.bars_per_year


_INTERVALS = {
    "1d": Interval("1d", 0),
    "1h": Interval("1h", 60),
    "30m": Interval("30m", 30),
    "15m": Interval("15m", 15),
    "5m": Interval("5m", 5),
    "1m": Interval("1m", 1),
}


def get_interval(name: str) -> Interval:
    """Return the :class:`Interval` called ``name`` (``1d``, ``1h``, ``30m``, ``15m``, ``5m``, ``1m``)."""
    try:
        return _INTERVALS[name]
    except KeyError:
        raise ParameterError(
            "unknown bar interval", found=repr(name), fix=f"use one of {', '.join(_INTERVALS)}"
        ) from None


#: Below this many years of bars an annualised number (CAGR, Sharpe, Sortino, volatility,
#: Calmar) extrapolates too little history to be read at face value: 5 one-minute sessions
#: of a lucky week print a CAGR of 71.6%. A run on a shorter sample says so next to it.
MIN_ANNUALISED_YEARS = 1.0


def short_sample_note(bars: int, interval: Interval) -> str | None:
    """A warning for annualised metrics of ``bars`` bars, or None for a year or more."""
    years = bars / interval.bars_per_year
    if years >= MIN_ANNUALISED_YEARS:
        return None
    return (
        f"short sample: {bars:,} {interval.name} bars = {years:.2f} years (under {MIN_ANNUALISED_YEARS:g}); "
        "annualised metrics (CAGR, Sharpe, Sortino, volatility, Calmar) extrapolate it to a year"
    )


class ShortSampleWarning(UserWarning):
    """Annualised numbers rest on under a year of bars (the CLIs print the note themselves)."""


def short_samples(bars: Mapping[str, int], interval: Interval, stacklevel: int = 3) -> dict[str, str]:
    """Notes for every labelled window (``"SPY in-sample"`` -> bars) under a year, and one
    ``UserWarning`` naming them all (Python users see it; ``summary.json`` keeps the notes).
    ``stacklevel`` points the warning at the caller of the public function."""
    notes = {label: note for label, n in bars.items() if (note := short_sample_note(int(n), interval))}
    if notes:
        text = "; ".join(f"{label}: {note}" for label, note in notes.items())
        warnings.warn(text, ShortSampleWarning, stacklevel=stacklevel)
    return notes
