"""Gateway core: shared state, sessions and broadcasts. Lives on the server loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from zoneinfo import ZoneInfo

import pandas as pd

from .contracts import Catalogue
from .engine import OrderEngine
from .history import BarStore
from .policy import FillPolicy, PolicyRule
from .recorder import Recorder
from .requests import OrderRequest
from .session import Session
from .state import GatewayState
from .triggers import Move, bar_moves, bar_points, check_ticks, extension_points, path_moves

log = logging.getLogger("tests.fakegw")


class GatewayCore:
    """Everything behind the sockets. Not thread-safe: use it on ``loop`` only."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        state: GatewayState,
        catalogue: Catalogue,
        tz: ZoneInfo,
        max_version: int,
        clock: Callable[[], dt.datetime],
        default_policy: FillPolicy,
        half_spread: float,
        quote_size: float,
    ) -> None:
        self.loop = loop
        self.state = state
        self.catalogue = catalogue
        self.tz = tz
        self.max_version = max_version
        self.clock = clock
        self.default_policy = default_policy
        self.half_spread = half_spread
        self.quote_size = quote_size
        self.bars = BarStore(tz)
        self.recorder = Recorder()
        self.engine = OrderEngine(self)
        self.sessions: dict[int, Session] = {}
        self.rules: list[PolicyRule] = []
        self.errors: list[str] = []
        self.silent: dict[int, int | None] = {}  # msg id -> requests left to ignore (None: all): a hung gateway
        self.intrabar = "auto"  # path of a pushed bar (triggers.INTRABAR)
        self._next_conn = 0

    # --- plumbing ----------------------------------------------------------
    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def account_ids(self) -> list[str]:
        return list(self.state.accounts)

    def new_session(self) -> Session:
        self._next_conn += 1
        return Session(self, self._next_conn)

    def session_for(self, client_id: int) -> Session | None:
        """The live, API-started session of ``client_id``."""
        for s in self.sessions.values():
            if s.client_id == client_id and s.ready:
                return s
        return None

    def ready_sessions(self) -> list[Session]:
        return [s for s in list(self.sessions.values()) if s.ready]

    def internal_error(self, text: str) -> None:
        log.error("fake gateway: %s", text)
        self.errors.append(text)

    def policy_for(self, req: OrderRequest, instrument: object) -> FillPolicy:
        for rule in self.rules:
            if rule.matches(req, instrument):  # type: ignore[arg-type]
                if rule.once:
                    self.rules.remove(rule)
                return rule.policy
        return self.default_policy

    # --- broadcasts -----------------------------------------------------------
    def on_account_change(self, account: str, symbol: str) -> None:
        """Position, portfolio, account values and P&L after a fill in ``symbol``."""
        book = self.state.book(account)
        pos = book.positions.get(symbol)
        for s in self.ready_sessions():
            if s.subs.positions and pos is not None:
                s.send(s.msg.position(book.account, pos))
            self._send_account(s, book.account, symbol)

    def mark_to_market(self, symbol: str) -> None:
        """Portfolio and account values after ``symbol``'s price moved."""
        for book in self.state.accounts.values():
            pos = book.positions.get(symbol)
            if pos is None or pos.qty == 0:
                continue
            for s in self.ready_sessions():
                self._send_account(s, book.account, symbol)

    def _send_account(self, s: Session, account: str, symbol: str) -> None:
        if s.subs.account == account:
            s.send_account_snapshot(account, symbol)
        for req_id, acct in s.subs.multi.items():
            if acct in ("", account):
                s.send_multi_values(req_id, account)
        for req_id, acct in s.subs.pnl.items():
            if acct == account:
                s.send_pnl(req_id, acct)
        for req_id, (acct, con_id) in s.subs.pnl_single.items():
            if acct == account:
                s.send_pnl_single(req_id, acct, con_id)

    # --- market ------------------------------------------------------------------
    def set_price(self, symbol: str, price: float) -> None:
        """New reference/last price: ticks, resting orders, mark-to-market. A jump of unknown path."""
        symbol = symbol.upper()
        self.walk(symbol, [Move(self.state.prices.get(symbol), float(price), "set")])

    def walk(self, symbol: str, moves: list[Move]) -> None:
        """Move the price through ``moves``: ticks and resting orders at each point, then marks."""
        for mv in moves:
            self.state.prices[symbol] = mv.end
            for s in self.ready_sessions():
                for req_id, sym in s.subs.market.items():
                    if sym == symbol:
                        s.send_ticks(req_id, symbol)
            self.engine.on_price(symbol, mv)
        self.mark_to_market(symbol)

    def walk_path(self, symbol: str, points: list[float], gap: bool = True) -> None:
        """Trade through ``points``: the first is a gap from the current price (``gap``), the rest continuous."""
        symbol = symbol.upper()
        pts = [float(p) for p in points]
        if not pts:
            raise ValueError("walk_path needs at least one price")
        prev = self.state.prices.get(symbol)
        self.walk(symbol, bar_moves(prev, pts) if gap else path_moves(prev, pts))

    def _bar_moves(
        self, symbol: str, row: Mapping[str, float], old: Mapping[str, float] | None, ticks: list[float] | None
    ) -> list[Move]:
        """The price moves of a pushed bar: its intrabar path, or only the new part of a forming bar."""
        o, h, low, c = (float(row[k]) for k in ("open", "high", "low", "close"))
        prev = self.state.prices.get(symbol)
        if ticks is not None:
            pts = ticks
            return path_moves(prev, pts[1:]) if old is not None else bar_moves(prev, pts)
        points = bar_points(o, h, low, c, self.intrabar)
        if old is None:
            return bar_moves(prev, points)
        low_first = points[1] == low
        return path_moves(prev, extension_points((float(old["low"]), float(old["high"])), low, h, c, low_first))

    def push_bar(
        self, symbol: str, bar: Mapping[str, object] | pd.Series, time: object = None, ticks: list[float] | None = None
    ) -> None:
        """Add or update a bar, stream it to keepUpToDate subscribers, then walk its intrabar path.

        A new latest bar walks its whole path (a gap to the open, then O-L-H-C or O-H-L-C, or
        ``ticks``); an update of the latest bar walks only its new extremes and close; a
        revision of an older bar only moves the price to the latest close, as before.
        """
        symbol = symbol.upper()
        if ticks is not None:
            data = {str(k).lower(): v for k, v in dict(bar).items()}
            c = float(data["close"])  # type: ignore[arg-type]
            ohlc = [float(data.get(k, c)) for k in ("open", "high", "low")]  # type: ignore[arg-type]
            ticks = check_ticks(ticks, ohlc[0], ohlc[1], ohlc[2], c)
        before = self.bars.last_row(symbol)
        ts = self.bars.push(symbol, bar, time)
        latest = self.bars.last_row(symbol)
        for s in self.ready_sessions():
            for req_id, sub in s.subs.history.items():
                if sub.symbol != symbol:
                    continue
                r = sub.req
                row = self.bars.bucket(symbol, r.bar_size, ts, r.use_rth, r.what_to_show, r.format_date)
                if row is not None:
                    s.send(s.msg.historical_update(req_id, row))
        if latest is not None and latest[0] == ts:
            old = before[1] if before is not None and before[0] == ts else None
            self.walk(symbol, self._bar_moves(symbol, latest[1], old, ticks))
            return
        close = self.bars.last_close(symbol)
        if close is not None:
            self.set_price(symbol, close)

    def silenced(self, msg_id: int) -> bool:
        """True if this request is to get no answer (``FakeGateway.silence``); counts it down."""
        if msg_id not in self.silent:
            return False
        left = self.silent[msg_id]
        if left is not None:
            if left <= 1:
                del self.silent[msg_id]
            else:
                self.silent[msg_id] = left - 1
        return True

    def inject_error(self, code: int, message: str, req_id: int = -1, client_id: int | None = None) -> int:
        sent = 0
        for s in self.ready_sessions():
            if client_id is None or s.client_id == client_id:
                if code == 10182:  # a live-update subscription that failed is dead at IB too
                    s.subs.history.pop(req_id, None)
                s.send(s.msg.error(req_id, code, message))
                sent += 1
        return sent

    def drop(self, client_id: int | None = None, abort: bool = False) -> int:
        victims = [s for s in list(self.sessions.values()) if client_id is None or s.client_id == client_id]
        for s in victims:
            s.close(abort=abort)
        return len(victims)
