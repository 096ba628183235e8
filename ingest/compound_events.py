"""The Compound v2 lineage's event catalogue: every cToken / vToken and Comptroller event the
adapter reads, its topic0, its layouts (which arguments are indexed differs between Compound,
Moonwell and Venus) and the column each argument lands in.

All events of a window go into one decoded table, ``compound_events``, one row per log in chain
order, so the replay reads them in one pass: ``event`` names the event, ``account`` the account
whose position it changes (minter, redeemer, borrower, the sender of a transfer, the account
entering a market), ``counterparty`` the other side (liquidator, payer, the receiver of a
transfer), ``market`` the cToken it concerns (the emitter for cToken events, the argument for
Comptroller events), ``collateral_market`` the seized cToken of a liquidation, and ``amount``,
``tokens``, ``account_borrows``, ``total_borrows``, ``borrow_index``, ``cash_prior``,
``interest_accumulated``, ``new_total_reserves``, ``old_value``, ``new_value`` the numbers.
Protocol layer: imports only the foundation and eth libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode
from eth_utils import keccak


@dataclass(frozen=True)
class CompoundEvent:
    name: str
    signature: str                 # canonical, for topic0
    args: tuple[tuple[str, str], ...]   # (type, column) in declaration order
    layouts: tuple[tuple[bool, ...], ...]  # indexed flags per argument: the shapes seen in the lineage
    source: str                    # "ctoken" or "comptroller"

    @property
    def topic0(self) -> str:
        return "0x" + keccak(text=self.signature).hex()


def _ev(name, types_cols, source, *layouts):
    sig = f"{name}({','.join(t for t, _ in types_cols)})"
    return CompoundEvent(name, sig, tuple(types_cols), tuple(layouts) or ((False,) * len(types_cols),), source)


A, U = "address", "uint256"
EVENTS: tuple[CompoundEvent, ...] = (
    # cToken events (Compound: nothing indexed but Transfer; Venus isolated pools index the accounts
    # and carry the account's new balance in Mint / Redeem).
    _ev("Mint", [(A, "account"), (U, "amount"), (U, "tokens")], "ctoken"),
    _ev("Mint", [(A, "account"), (U, "amount"), (U, "tokens"), (U, "account_tokens")], "ctoken",
        (False, False, False, False), (True, False, False, False)),
    _ev("Redeem", [(A, "account"), (U, "amount"), (U, "tokens")], "ctoken"),
    _ev("Redeem", [(A, "account"), (U, "amount"), (U, "tokens"), (U, "account_tokens")], "ctoken",
        (False, False, False, False), (True, False, False, False)),
    _ev("MintBehalf", [(A, "counterparty"), (A, "account"), (U, "amount"), (U, "tokens")], "ctoken",
        (False, False, False, False), (True, True, False, False)),
    _ev("Borrow", [(A, "account"), (U, "amount"), (U, "account_borrows"), (U, "total_borrows")], "ctoken",
        (False, False, False, False), (True, False, False, False)),
    _ev("RepayBorrow", [(A, "counterparty"), (A, "account"), (U, "amount"), (U, "account_borrows"),
                        (U, "total_borrows")], "ctoken",
        (False,) * 5, (True, True, False, False, False)),
    _ev("LiquidateBorrow", [(A, "counterparty"), (A, "account"), (U, "amount"), (A, "collateral_market"),
                            (U, "tokens")], "ctoken",
        (False,) * 5, (True, True, False, True, False)),
    _ev("Transfer", [(A, "account"), (A, "counterparty"), (U, "tokens")], "ctoken",
        (True, True, False), (False, False, False)),
    _ev("AccrueInterest", [(U, "cash_prior"), (U, "interest_accumulated"), (U, "borrow_index"),
                           (U, "total_borrows")], "ctoken"),
    # The first cTokens (2019, cDAI's Sai ancestors) logged AccrueInterest without cashPrior.
    _ev("AccrueInterest", [(U, "interest_accumulated"), (U, "borrow_index"), (U, "total_borrows")], "ctoken"),
    _ev("ReservesAdded", [(A, "account"), (U, "amount"), (U, "new_total_reserves")], "ctoken"),
    _ev("ReservesReduced", [(A, "account"), (U, "amount"), (U, "new_total_reserves")], "ctoken"),
    _ev("SpreadReservesReduced", [(A, "account"), (U, "amount"), (U, "new_total_reserves")], "ctoken",
        (True, False, False), (False, False, False)),
    _ev("CashSynced", [(U, "old_value"), (U, "new_value")], "ctoken"),
    _ev("NewReserveFactor", [(U, "old_value"), (U, "new_value")], "ctoken"),
    _ev("NewProtocolSeizeShare", [(U, "old_value"), (U, "new_value")], "ctoken"),
    # Venus isolated pools: the protocol's share of a seizure, bad debt and its healing.
    _ev("ProtocolSeize", [(A, "account"), (A, "counterparty"), (U, "amount")], "ctoken",
        (True, True, False), (False, False, False)),
    _ev("BadDebtIncreased", [(A, "account"), (U, "amount"), (U, "old_value"), (U, "new_value")], "ctoken",
        (True, False, False, False), (False,) * 4),
    _ev("HealBorrow", [(A, "counterparty"), (A, "account"), (U, "amount")], "ctoken",
        (True, True, False), (False,) * 3),
    # Comptroller events.
    _ev("MarketEntered", [(A, "market"), (A, "account")], "comptroller", (False, False), (True, True)),
    _ev("MarketExited", [(A, "market"), (A, "account")], "comptroller", (False, False), (True, True)),
    _ev("MarketListed", [(A, "market")], "comptroller", (False,), (True,)),
    _ev("MarketSupported", [(A, "market")], "comptroller", (False,), (True,)),
    _ev("NewCollateralFactor", [(A, "market"), (U, "old_value"), (U, "new_value")], "comptroller",
        (False,) * 3, (True, False, False)),
    _ev("NewLiquidationThreshold", [(A, "market"), (U, "old_value"), (U, "new_value")], "comptroller",
        (False,) * 3, (True, False, False)),
    _ev("NewCloseFactor", [(U, "old_value"), (U, "new_value")], "comptroller"),
    _ev("NewLiquidationIncentive", [(U, "old_value"), (U, "new_value")], "comptroller"),
    _ev("NewMinLiquidatableCollateral", [(U, "old_value"), (U, "new_value")], "comptroller"),
    _ev("NewPriceOracle", [(A, "old_oracle"), (A, "new_oracle")], "comptroller",
        (False, False), (True, True)),
)

TOPICS: dict[str, list[CompoundEvent]] = {}
for _e in EVENTS:
    TOPICS.setdefault(_e.topic0, []).append(_e)

# The columns of ``compound_events`` (besides the log's own: block, transaction, log index, emitter).
ADDRESS_COLUMNS = ("account", "counterparty", "market", "collateral_market", "old_oracle", "new_oracle")
AMOUNT_COLUMNS = ("amount", "tokens", "account_tokens", "account_borrows", "total_borrows", "borrow_index",
                  "cash_prior", "interest_accumulated", "new_total_reserves", "old_value", "new_value")


def _word_address(word: bytes) -> str:
    return "0x" + word[-20:].hex()


def decode_log(topics: list[str], data: str) -> dict | None:
    """The decoded columns of one log (``event`` plus the argument columns), or None when its
    topic0 is no event of the catalogue or no layout fits its topics and data."""
    if not topics:
        return None
    cands = TOPICS.get(topics[0].lower())
    if not cands:
        return None
    payload = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    for ev in cands:
        for flags in ev.layouts:
            if sum(flags) != len(topics) - 1:
                continue
            data_types = [t for (t, _), ix in zip(ev.args, flags) if not ix]
            if len(payload) != 32 * len(data_types):
                continue
            values = list(decode(data_types, payload)) if data_types else []
            out: dict = {"event": ev.name}
            ti = 1
            for (typ, colname), ix in zip(ev.args, flags):
                if ix:
                    word = bytes.fromhex(topics[ti][2:])
                    ti += 1
                    out[colname] = _word_address(word) if typ == A else int.from_bytes(word, "big")
                else:
                    v = values.pop(0)
                    out[colname] = v.lower() if typ == A else int(v)
            return out
    return None


def all_topic0s() -> list[str]:
    return sorted(TOPICS)
