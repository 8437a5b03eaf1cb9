"""Server-to-client message builders at a negotiated server version.

Every method returns the field list (message id first); ``protocol`` frames
it. Layouts were checked against ib_async 2.1.0's ``decoder.py``; where the
decoder unpacks a fixed count (position, updatePortfolio, commissionReport,
tickPrice, and 9/15 before the client is ready) the count here is exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .contracts import Instrument
from .protocol import UNSET_DOUBLE
from .state import Execution, Order, Position
from .visibility import message_ids

Fields = list[object]
_PEG_BENCH = {"PEG BENCH", "PEGBENCH"}


def ib_time(t: dt.datetime, tz: ZoneInfo) -> str:
    """``YYYYMMDD HH:MM:SS <IANA zone>``, the unambiguous form clients parse."""
    return t.astimezone(tz).strftime("%Y%m%d %H:%M:%S ") + tz.key


@dataclass(frozen=True)
class WhatIfInfo:
    """Margin and commission figures for a whatIf openOrder reply."""

    init_change: float
    maint_change: float
    equity_after: float
    init_after: float
    maint_after: float
    commission: float


class MessageBuilder:
    """Builds messages for one connection's negotiated ``version``."""

    def __init__(self, version: int, tz: ZoneInfo) -> None:
        self.version = version
        self.tz = tz

    # --- session -------------------------------------------------------
    def handshake(self, now: dt.datetime) -> Fields:
        return [self.version, now.astimezone(self.tz).strftime("%Y%m%d %H:%M:%S %Z")]

    def managed_accounts(self, accounts: Sequence[str]) -> Fields:
        return [15, 1, ",".join(accounts)]

    def next_valid_id(self, order_id: int) -> Fields:
        return [9, 1, order_id]

    def current_time(self, now: dt.datetime) -> Fields:
        return [49, 1, int(now.timestamp())]

    def error(self, req_id: int, code: int, message: str, reject_json: str = "") -> Fields:
        fields: Fields = [4, 2, req_id, code, message]
        if self.version >= 166:
            fields.append(reject_json)
        return fields

    # --- account -------------------------------------------------------
    def position(self, account: str, pos: Position) -> Fields:
        inst = pos.instrument
        return [61, 3, account, *inst.block(inst.primary_exchange), pos.qty, pos.avg_cost]

    def position_end(self) -> Fields:
        return [62, 1]

    def account_value(self, tag: str, value: str, currency: str, account: str) -> Fields:
        return [6, 2, tag, value, currency, account]

    def portfolio(self, account: str, pos: Position, price: float) -> Fields:
        inst = pos.instrument
        return [
            7,
            8,
            *inst.portfolio_block(),
            pos.qty,
            price,
            pos.qty * price,
            pos.avg_cost,
            pos.unrealized(price),
            pos.realized,
            account,
        ]

    def account_time(self, now: dt.datetime) -> Fields:
        return [8, 1, now.astimezone(self.tz).strftime("%H:%M")]

    def account_download_end(self, account: str) -> Fields:
        return [54, 1, account]

    def account_update_multi(
        self, req_id: int, account: str, model: str, tag: str, value: str, currency: str
    ) -> Fields:
        return [73, 1, req_id, account, model, tag, value, currency]

    def account_update_multi_end(self, req_id: int) -> Fields:
        return [74, 1, req_id]

    def account_summary(self, req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
        return [63, 1, req_id, account, tag, value, currency]

    def account_summary_end(self, req_id: int) -> Fields:
        return [64, 1, req_id]

    def pnl(self, req_id: int, daily: float, unrealized: float, realized: float) -> Fields:
        return [94, req_id, daily, unrealized, realized]

    def pnl_single(
        self, req_id: int, pos: float, daily: float, unrealized: float, realized: float, value: float
    ) -> Fields:
        return [95, req_id, pos, daily, unrealized, realized, value]

    # --- contracts and data ----------------------------------------------
    def contract_details(self, req_id: int, inst: Instrument) -> Fields:
        v = self.version
        f: Fields = [10]
        if v < 164:
            f.append(8)
        f += [
            req_id,
            inst.symbol,
            inst.sec_type,
            "",
            0.0,
            "",
            "SMART",
            inst.currency,
            inst.symbol,
            inst.trading_class,
            inst.trading_class,
            inst.con_id,
            inst.min_tick,
        ]
        if v < 164:
            f.append(1)  # mdSizeMultiplier
        f += [
            "",  # multiplier
            "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,DAY,GTC,IOC,LIT,LMT,LOC,MIT,MKT,MOC,STP,STPLMT,TRAIL",
            f"SMART,{inst.primary_exchange}",
            1,
            0,
            inst.long_name,
            inst.primary_exchange,
            "",
            inst.industry,
            inst.category,
            inst.subcategory,
            "US/Eastern",
            "",
            "",
            "",
            "",
            0,  # secIdCount
            1,
            "",
            "",
            "26,26",
            "",
            inst.stock_type,
        ]
        if v == 163:
            f.append(100.0)
        if v >= 164:
            f += [1.0, 1.0, 100.0]
        return f

    def contract_details_end(self, req_id: int) -> Fields:
        return [52, 1, req_id]

    def historical_data(self, req_id: int, start: str, end: str, bars: Sequence[Sequence[object]]) -> Fields:
        """``bars`` rows: date, open, high, low, close, volume, wap, count."""
        f: Fields = [17, req_id, start, end, len(bars)]
        for bar in bars:
            f += list(bar)
        return f

    def historical_update(self, req_id: int, bar: Sequence[object]) -> Fields:
        date, o, h, lo, c, vol, wap, count = bar
        return [90, req_id, count, date, o, c, h, lo, wap, vol]

    def head_timestamp(self, req_id: int, stamp: str) -> Fields:
        return [88, req_id, stamp]

    def tick_price(self, req_id: int, tick_type: int, price: float, size: float) -> Fields:
        return [1, 6, req_id, tick_type, price, size, 0]

    def tick_size(self, req_id: int, tick_type: int, size: float) -> Fields:
        return [2, 6, req_id, tick_type, size]

    def tick_string(self, req_id: int, tick_type: int, value: str) -> Fields:
        return [46, 6, req_id, tick_type, value]

    def market_data_type(self, req_id: int, kind: int) -> Fields:
        return [58, 1, req_id, kind]

    def tick_req_params(self, req_id: int, min_tick: float) -> Fields:
        return [81, req_id, min_tick, "9c0001", 3]

    def tick_snapshot_end(self, req_id: int) -> Fields:
        return [57, 1, req_id]

    # --- orders --------------------------------------------------------
    def open_order(self, o: Order, status: str | None = None, what_if: WhatIfInfo | None = None) -> Fields:
        v, r = self.version, o.req
        order_id, client_id = message_ids(o)
        f: Fields = [
            5,
            order_id,
            *o.instrument.block(r.contract.exchange or "SMART"),
            r.action,
            r.quantity,
            r.order_type,
            r.lmt_price,
            r.aux_price,
            r.tif,
            r.oca_group,
            o.account,
            r.open_close or "O",
            r.origin,
            r.order_ref,
            client_id,
            o.perm_id,
            r.outside_rth,
            r.hidden,
            0.0,
            r.good_after_time,
            "",  # deprecated sharesAllocation
            "",
            "",
            "",  # faGroup, faMethod, faPercentage
        ]
        if v < 177:
            f.append("")  # faProfile
        f += [
            "",
            r.good_till_date,
            "",
            "",
            "",
            0,
            "",
            -1,
            0,
            "",
            "",
            "",
            "",
            "",
            0,
            0,
            0,
            0,
            "",
            r.oca_type,
            0,
            0,
            "",
            r.parent_id,
            0,
            "",
            "",
            "",
            "",  # deltaNeutralOrderType, deltaNeutralAuxPrice
            0,
            "",
            o.trail_stop,
            r.trailing_percent,
            "",
            "",
            "",
            0,
            0,
            0,  # comboLegCount, orderComboLegCount, smartComboParamCount
            "",
            "",
            "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
            "",  # hedgeType
            0,
            "",
            "",
            0,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
            0,  # deltaNeutralContract
            "",  # algoStrategy
            0,
            what_if is not None,
            status or o.status,
        ]
        if what_if is None:
            f += [""] * 9 + ["", "", "", "", ""]
        else:
            w = what_if
            f += [
                "0",
                "0",
                f"{w.equity_after:.2f}",
                f"{w.init_change:.2f}",
                f"{w.maint_change:.2f}",
                "0",
                f"{w.init_after:.2f}",
                f"{w.maint_after:.2f}",
                f"{w.equity_after:.2f}",
                w.commission,
                w.commission,
                w.commission,
                "USD",
                "",
            ]
        f += [0, 0]  # randomizeSize, randomizePrice
        if r.order_type.upper() in _PEG_BENCH:
            f += ["", 0, "", "", ""]
        f += [0]  # conditionCount
        f += ["", "", o.trail_stop, "", "", "", "", 0, "", "", "", "", 0, 0, 0, 0]
        if v >= 159:
            f.append("")  # duration
        if v >= 160:
            f.append("")  # postToAts
        if v >= 162:
            f.append(0)  # autoCancelParent
        if v >= 170:
            f += ["", "", "", "", ""]
        return f

    def open_order_end(self) -> Fields:
        return [53, 1]

    def order_status(self, o: Order, status: str | None = None) -> Fields:
        order_id, client_id = message_ids(o)
        return [
            3,
            order_id,
            status or o.status,
            o.filled,
            o.remaining,
            o.avg_fill_price,
            o.perm_id,
            o.req.parent_id,
            o.last_fill_price,
            client_id,
            "",
            0.0,
        ]

    def completed_order(self, o: Order, completed_time: str) -> Fields:
        v, r = self.version, o.req
        f: Fields = [
            101,
            *o.instrument.block(r.contract.exchange or "SMART"),
            r.action,
            r.quantity,
            r.order_type,
            r.lmt_price,
            r.aux_price,
            r.tif,
            r.oca_group,
            o.account,
            r.open_close or "O",
            r.origin,
            r.order_ref,
            o.perm_id,
            r.outside_rth,
            r.hidden,
            0.0,
            r.good_after_time,
            "",
            "",
            "",
        ]
        if v < 177:
            f.append("")  # faProfile
        f += [
            "",
            r.good_till_date,
            "",
            "",
            "",
            0,
            "",
            -1,
            "",
            "",
            "",
            "",
            "",
            0,
            0,
            0,
            "",
            r.oca_type,
            0,
            "",
            "",
            "",
            "",
            0,
            "",
            o.trail_stop,
            r.trailing_percent,
            "",
            0,
            0,
            0,
            "",
            "",
            "",
            "",
            "",
            "",
            0,
            0,  # clearingAccount, clearingIntent, notHeld, deltaNeutralContract
            "",  # algoStrategy
            0,
            o.status,
            0,
            0,  # solicited, status, randomizeSize, randomizePrice
        ]
        if r.order_type.upper() in _PEG_BENCH:
            f += ["", 0, "", "", ""]
        f += [0]  # conditionCount
        f += [
            o.trail_stop,
            "",
            "",
            0,
            0,
            "",
            o.filled,
            "",
            0,
            "",
            0,
            0,
            "",
            completed_time,
            o.completed_status or o.status,
        ]
        if v >= 170:
            f += ["", "", "", "", ""]
        return f

    def completed_orders_end(self) -> Fields:
        return [102]

    def exec_details(self, req_id: int, ex: Execution) -> Fields:
        f: Fields = [
            11,
            req_id,
            max(ex.order_id, 0) if ex.client_id >= 0 else 0,
            *ex.instrument.block(ex.exchange),
            ex.exec_id,
            ib_time(ex.time, self.tz),
            ex.account,
            ex.exchange,
            ex.side,
            ex.shares,
            ex.price,
            ex.perm_id,
            max(ex.client_id, 0),
            0,
            ex.cum_qty,
            ex.avg_price,
            ex.order_ref,
            "",
            "",
            "",
            2,
        ]
        if self.version >= 178:
            f.append(0)  # pendingPriceRevision
        return f

    def exec_details_end(self, req_id: int) -> Fields:
        return [55, 1, req_id]

    def commission_report(self, ex: Execution) -> Fields:
        realized = UNSET_DOUBLE if ex.realized_pnl is None else ex.realized_pnl
        return [59, 1, ex.exec_id, ex.commission, "USD", realized, UNSET_DOUBLE, ""]
