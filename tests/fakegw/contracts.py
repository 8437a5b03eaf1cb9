"""Instrument catalogue of the fake gateway and the contract blocks it sends."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ContractSpec:
    """The 12-field contract block as a client sends it."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade: str = ""
    strike: str = ""
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    @classmethod
    def from_fields(cls, f: list[str]) -> ContractSpec:
        """Build from exactly 12 text fields (C12)."""
        con_id = int(f[0]) if f[0] else 0
        return cls(con_id, *f[1:12])


@dataclass(frozen=True)
class Instrument:
    """A stock the fake knows (SMART-routed, USD)."""

    symbol: str
    con_id: int
    primary_exchange: str
    long_name: str = ""
    currency: str = "USD"
    sec_type: str = "STK"
    min_tick: float = 0.01
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = "COMMON"

    def block(self, exchange: str = "SMART") -> list[object]:
        """The 11-field server-to-client contract block (no primaryExchange)."""
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            "",
            0.0,
            "",
            "",
            exchange,
            self.currency,
            self.symbol,
            self.trading_class,
        ]

    @property
    def trading_class(self) -> str:
        return "NMS" if self.primary_exchange == "NASDAQ" else self.symbol

    def portfolio_block(self) -> list[object]:
        """updatePortfolio's block: primaryExchange in place of exchange."""
        return self.block(exchange=self.primary_exchange)


#: Stable conIds (IB-like; do not rely on them matching IB's production ids).
DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", stock_type="ETF"),
    Instrument("QQQ", 320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", stock_type="ETF"),
    Instrument("IWM", 9579970, "ARCA", "ISHARES RUSSELL 2000 ETF", stock_type="ETF"),
    Instrument("DIA", 73128548, "ARCA", "SPDR DJ INDUSTRIAL AVERAGE", stock_type="ETF"),
    Instrument("TLT", 15547841, "NASDAQ", "ISHARES 20+ YEAR TREASURY BO", stock_type="ETF"),
    Instrument("GLD", 51529211, "ARCA", "SPDR GOLD SHARES", stock_type="ETF"),
    Instrument("AAPL", 265598, "NASDAQ", "APPLE INC"),
    Instrument("MSFT", 272093, "NASDAQ", "MICROSOFT CORP"),
    Instrument("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC"),
    Instrument("GOOG", 208813720, "NASDAQ", "ALPHABET INC-CL C"),
    Instrument("JPM", 1520593, "NYSE", "JPMORGAN CHASE & CO"),
    Instrument("XOM", 13977, "NYSE", "EXXON MOBIL CORP"),
)


@dataclass
class Catalogue:
    """Symbol and conId lookup for the instruments the fake will qualify."""

    instruments: dict[str, Instrument] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Catalogue:
        return cls({i.symbol: i for i in DEFAULT_INSTRUMENTS})

    def add(self, instrument: Instrument) -> None:
        self.instruments[instrument.symbol] = instrument

    def by_symbol(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol.upper())

    def resolve(self, spec: ContractSpec) -> Instrument | None:
        """Find the instrument a client contract means, or ``None``.

        A non-zero conId must match; otherwise symbol (or localSymbol),
        secType (STK or empty) and currency (USD or empty) must match.
        """
        if spec.con_id:
            for inst in self.instruments.values():
                if inst.con_id == spec.con_id:
                    return inst
            return None
        found = self.by_symbol(spec.symbol or spec.local_symbol)
        if found is None:
            return None
        if spec.sec_type not in ("", found.sec_type) or spec.currency not in ("", found.currency):
            return None
        return found
