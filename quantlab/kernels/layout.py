"""Index layout of the float64 vectors passed to the simulation kernels.

``cfg`` (costs, sizing, cash) is built by :meth:`quantlab.engine.settings.SimConfig.to_array`;
metric rows are described by :data:`METRIC_NAMES`. Keep this module free of logic.
"""

from __future__ import annotations

# --- cfg vector ---------------------------------------------------------------------------
C_INIT_CASH = 0
C_MODEL = 1  # COST_IB_FIXED or COST_PERCENT
C_PER_SHARE = 2
C_MIN_FEE = 3
C_MAX_PCT = 4
C_PCT_FEE = 5
C_FIXED_FEE = 6
C_SLIPPAGE = 7  # fraction, e.g. 5 bps = 0.0005
C_SIZING = 8  # SIZE_* below
C_SIZE_VALUE = 9  # fraction of equity, cash amount, or annualised vol target
C_MAX_LEVERAGE = 10  # cap for volatility-target sizing (<= 1: no margin)
C_WHOLE = 11  # 1.0: whole shares, 0.0: fractional
C_ALLOW_SHORT = 12  # 1.0 lets negative targets open short positions
C_SEC_FEE = 13  # SEC Section 31 fee: fraction of sell notional
C_TAF_PER_SHARE = 14  # FINRA Trading Activity Fee per share sold
C_TAF_MAX = 15  # FINRA TAF cap per trade (0: no cap)
C_BORROW = 16  # short borrow: annual rate on the short notional, charged per bar at the close
CFG_LEN = 17

COST_IB_FIXED = 0.0
COST_PERCENT = 1.0

SIZE_ALL = 0.0
SIZE_FRACTION = 1.0
SIZE_CASH = 2.0
SIZE_VOL_TARGET = 3.0

# --- exit vector (one per parameter row; NaN = rule off) -------------------------------------
X_SL_STOP = 0  # fraction below (long) / above (short) the entry price
X_TP_STOP = 1  # fraction above (long) / below (short) the entry price
X_SL_TRAIL = 2  # fraction below the high-water mark (long) / above the low-water mark (short)
X_MAX_HOLD = 3  # bars: exit at the open max_hold bars after the entry bar
X_ENTRY_LIMIT = 4  # entries are limit orders this fraction through the signal close
X_LIMIT_EXPIRY = 5  # bars a limit entry works after the signal bar (default 1)
X_LIMIT_TICKS = 6  # a limit fills only if the price trades through it by this many ticks
EXIT_LEN = 7
TICK = 0.01

# --- order record columns (recording runs) -----------------------------------------------------
O_BAR = 0  # bar offset from the window start
O_SIZE = 1  # signed shares
O_PRICE = 2  # raw fill price (before slippage and half-spread)
O_FEE = 3  # commission + regulatory fees
O_REASON = 4  # R_* below
ORDER_LEN = 5
MAX_ORDERS_PER_BAR = 3  # gap exit + new entry at the open + intrabar stop of that entry

R_SIGNAL = 0.0
R_STOP = 1.0
R_TARGET = 2.0
R_TRAIL = 3.0
R_TIME = 4.0
REASON_NAMES = ("signal", "stop", "target", "trail", "time")

# --- metric row -----------------------------------------------------------------------------
METRIC_NAMES = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "profit_factor",
    "n_trades",
    "exposure",
    "volatility",
    "n_orders",
    "fees",
    "final_value",
    "max_drawdown_duration",
    "max_recovery_time",
    "avg_win",
    "avg_loss",
)
M_TOTAL_RETURN = 0
M_CAGR = 1
M_SHARPE = 2
M_SORTINO = 3
M_MAX_DD = 4
M_CALMAR = 5
M_WIN_RATE = 6
M_PROFIT_FACTOR = 7
M_N_TRADES = 8
M_EXPOSURE = 9
M_VOLATILITY = 10
M_N_ORDERS = 11
M_FEES = 12
M_FINAL_VALUE = 13
M_MAX_DD_DURATION = 14  # bars under water in the longest drawdown (open one included)
M_MAX_RECOVERY = 15  # bars from valley to recovery, longest (open one: valley to last bar)
M_AVG_WIN = 16  # mean PnL of closed winning round trips (account currency)
M_AVG_LOSS = 17  # mean PnL of closed losing round trips (negative)
N_METRICS = 18
