"""The Compound v2 lineage's position book: markets and accounts, event-sourced.

Each market keeps what its exchange rate and borrow balances are made of (cash, totalBorrows,
totalReserves, totalSupply, borrowIndex, bad debt) and its factors; each account its cToken
balance, borrow principal and interest index per market, and the markets it entered. Events are
applied as the cToken applies them (:func:`CompoundBook.apply`). At the first event of a block
a market's state is set from the reads at the end of the previous block
(``compound_market_reads``), so an effect the events do not show (a donation to the cToken) lasts
at most until the block ends; ``drift`` counts the blocks whose event-sourced exchange rate
differs from the one read at their end.

A position read at the start (``getAccountSnapshot``) gives the borrow balance, not the stored
principal and index; ingest adds them from the logs since ``users_since`` where it can
(``borrow_principal``, ``borrow_interest_index``). Without them the balance is taken as the
principal at the start's borrow index, and later borrow balances of that position can differ
from the protocol's by the rounding of one division (a base unit or so), until the account
borrows or repays, when the event's ``accountBorrows`` resets it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from postmortem.replay.compound_v2.comptroller import Holding
from postmortem.replay.compound_v2.ctoken import borrow_balance_stored, exchange_rate_stored, reserves_after_accrual

ZERO = "0x" + "0" * 40


@dataclass
class MarketState:
    market: str
    symbol: str
    decimals: int
    cash: int
    total_borrows: int
    total_reserves: int
    total_supply: int
    borrow_index: int
    reserve_factor: int
    collateral_factor: int
    liquidation_threshold: int | None
    protocol_seize_share: int
    initial_exchange_rate: int
    bad_debt: int = 0

    def exchange_rate(self) -> int:
        return exchange_rate_stored(self.cash, self.total_borrows, self.total_reserves, self.total_supply,
                                    self.initial_exchange_rate, self.bad_debt)


@dataclass
class Position:
    tokens: int = 0
    principal: int = 0
    interest_index: int = 0


@dataclass
class CompoundBook:
    markets: dict[str, MarketState]
    accounts: dict[str, dict[str, Position]] = field(default_factory=dict)
    entered: dict[str, set[str]] = field(default_factory=dict)
    close_factor: int = 0
    liquidation_incentive: int = 0
    min_liquidatable_collateral: int = 0
    events_applied: int = 0
    drift: int = 0

    # -- start -------------------------------------------------------------------------------------------

    @classmethod
    def at_start(cls, markets: list[dict], positions: list[dict]) -> "CompoundBook":
        ms = {}
        for m in markets:
            ms[m["market"]] = MarketState(
                market=m["market"], symbol=m["symbol"], decimals=int(m["decimals"]), cash=int(m["cash"]),
                total_borrows=int(m["total_borrows"]), total_reserves=int(m["total_reserves"]),
                total_supply=int(m["total_supply"]), borrow_index=int(m["borrow_index"]),
                reserve_factor=int(m["reserve_factor"]), collateral_factor=int(m["collateral_factor"]),
                liquidation_threshold=None if m.get("liquidation_threshold") is None else int(m["liquidation_threshold"]),
                protocol_seize_share=int(m["protocol_seize_share"]),
                initial_exchange_rate=int(m["exchange_rate_stored"]), bad_debt=int(m.get("bad_debt") or 0))
        first = markets[0] if markets else {}
        book = cls(ms, close_factor=int(first.get("close_factor") or 0),
                   liquidation_incentive=int(first.get("liquidation_incentive") or 0),
                   min_liquidatable_collateral=int(first.get("min_liquidatable_collateral") or 0))
        for p in positions:
            pos = book.position(p["account"], p["market"])
            pos.tokens = int(p["ctoken_balance"])
            if p.get("borrow_principal") is not None and p.get("borrow_interest_index"):
                pos.principal, pos.interest_index = int(p["borrow_principal"]), int(p["borrow_interest_index"])
            elif int(p["borrow_balance"]):
                pos.principal = int(p["borrow_balance"])
                pos.interest_index = ms[p["market"]].borrow_index
            if p["entered"]:
                book.entered.setdefault(p["account"], set()).add(p["market"])
        return book

    def position(self, account: str, market: str) -> Position:
        return self.accounts.setdefault(account, {}).setdefault(market, Position())

    def sync_market(self, market: str, read: dict) -> None:
        """Set a market's state from a read at the end of a block (before the next block's events)."""
        m = self.markets[market]
        before = m.exchange_rate()
        m.cash, m.total_borrows = int(read["cash"]), int(read["total_borrows"])
        m.total_reserves, m.total_supply = int(read["total_reserves"]), int(read["total_supply"])
        m.borrow_index = int(read["borrow_index"])
        m.bad_debt = int(read.get("bad_debt") or 0)
        if m.total_supply == 0:
            m.initial_exchange_rate = int(read["exchange_rate_stored"])
        if before != m.exchange_rate():
            self.drift += 1

    # -- reading ----------------------------------------------------------------------------------------------

    def borrow_balance(self, account: str, market: str) -> int:
        pos = self.accounts.get(account, {}).get(market)
        if pos is None or pos.principal == 0:
            return 0
        return borrow_balance_stored(pos.principal, pos.interest_index, self.markets[market].borrow_index)

    def holdings(self, account: str, prices: dict[str, int]) -> list[Holding]:
        """The account's entered markets as ``getAccountSnapshot`` + ``markets()`` + the given prices see them."""
        out = []
        for mk in sorted(self.entered.get(account, ())):
            m = self.markets[mk]
            pos = self.accounts.get(account, {}).get(mk) or Position()
            out.append(Holding(mk, pos.tokens, self.borrow_balance(account, mk), m.exchange_rate(), prices[mk],
                               m.collateral_factor, m.liquidation_threshold))
        return out

    def borrowers(self) -> list[str]:
        return sorted(a for a, ps in self.accounts.items() if any(p.principal for p in ps.values()))

    # -- events -------------------------------------------------------------------------------------------------

    def apply(self, ev: dict) -> None:
        """Apply one decoded event (a ``compound_events`` row) as the protocol did."""
        name, mk = ev["event"], ev.get("market")
        m = self.markets.get(mk) if mk else None
        acct = ev.get("account")
        self.events_applied += 1
        if name == "AccrueInterest" and m is not None:
            if ev.get("cash_prior") is not None:
                m.cash = int(ev["cash_prior"])
            m.total_reserves = reserves_after_accrual(m.total_reserves, int(ev["interest_accumulated"]),
                                                      m.reserve_factor)
            m.borrow_index, m.total_borrows = int(ev["borrow_index"]), int(ev["total_borrows"])
        elif name in ("Mint", "MintBehalf") and m is not None:
            m.cash += int(ev["amount"])
        elif name == "Redeem" and m is not None:
            m.cash -= int(ev["amount"])
        elif name in ("Borrow", "RepayBorrow") and m is not None:
            m.cash += int(ev["amount"]) if name == "RepayBorrow" else -int(ev["amount"])
            m.total_borrows = int(ev["total_borrows"])
            pos = self.position(acct, mk)
            pos.principal, pos.interest_index = int(ev["account_borrows"]), m.borrow_index
        elif name == "Transfer" and m is not None:
            src, dst, n = acct, ev.get("counterparty"), int(ev["tokens"])
            if src in (mk, ZERO):
                m.total_supply += n       # minted
            else:
                self.position(src, mk).tokens -= n
            if dst in (mk, ZERO):
                m.total_supply -= n       # redeemed, or the protocol's seize share burned
            else:
                self.position(dst, mk).tokens += n
        elif name == "ProtocolSeize" and m is not None:
            m.cash -= int(ev["amount"])  # Venus isolated pools: the share's underlying leaves for the reserve
        elif name == "ReservesAdded" and m is not None:
            if acct != mk:
                m.cash += int(ev["amount"])
            m.total_reserves = int(ev["new_total_reserves"])
        elif name == "CashSynced" and m is not None:
            m.cash = int(ev["new_value"])
        elif name in ("ReservesReduced", "SpreadReservesReduced") and m is not None:
            m.cash -= int(ev["amount"])
            m.total_reserves = int(ev["new_total_reserves"])
        elif name == "BadDebtIncreased" and m is not None:
            m.bad_debt = int(ev["new_value"])
        elif name == "NewReserveFactor" and m is not None:
            m.reserve_factor = int(ev["new_value"])
        elif name == "NewProtocolSeizeShare" and m is not None:
            m.protocol_seize_share = int(ev["new_value"])
        elif name == "MarketEntered":
            self.entered.setdefault(acct, set()).add(mk)
        elif name == "MarketExited":
            self.entered.setdefault(acct, set()).discard(mk)
        elif name == "NewCollateralFactor" and m is not None:
            m.collateral_factor = int(ev["new_value"])
        elif name == "NewLiquidationThreshold" and m is not None:
            m.liquidation_threshold = int(ev["new_value"])
        elif name == "NewCloseFactor":
            self.close_factor = int(ev["new_value"])
        elif name == "NewLiquidationIncentive":
            self.liquidation_incentive = int(ev["new_value"])
        elif name == "NewMinLiquidatableCollateral":
            self.min_liquidatable_collateral = int(ev["new_value"])

    def debit_seized(self, account: str, market: str, missing: int) -> None:
        """A seizure's cTokens that left the borrower without a Transfer log (Venus isolated pools burn
        the protocol's share): off the borrower's balance and the market's supply."""
        if missing > 0:
            self.position(account, market).tokens -= missing
            self.markets[market].total_supply -= missing
