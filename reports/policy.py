"""Reimbursement policy: who is owed what, and how a published payout compares.

Two ways to value a borrower's loss:

* **the chain's prices** (the default): the replay's own decomposition of each liquidation —
  oracle loss ``C × (Pt − Pr)``, its protocol-fee part ``F × (Pt − Pr)`` and the bonus
  ``(C + F) × Pr − D × Qr`` — in ETH wei at the true ETH price.
* **a stated policy**, the way a DAO writes one, so a published payout can be reproduced:

  - ``rate_gap_eth``: ETH per whole unit of the mispriced collateral (e.g. 0.034902118 ETH per
    wstETH, the live rate minus the capped rate). Oracle loss of a liquidation =
    ``liquidated_collateral_amount × rate_gap`` (the collateral the liquidator received, net of
    the protocol fee, as in the ``LiquidationCall`` log); liquidations of other collateral get 0.
  - ``bonus_bps``: the bonus basis in basis points of the debt repaid (``debtToCover``, valued
    in ETH: WETH debt as is, other debt at ``debt_price / eth_price`` at that block).
  - ``goodwill_wei``: a fixed amount added once per borrower on the list.

  A part the policy does not state keeps its chain-price value; a stated rate gap replaces the
  oracle loss *and* its protocol-fee part (the DAO's ``C × gap`` has no fee term).

Rounding: every component of every liquidation is computed exactly (rationals) and rounded
**down to the wei** once; a borrower's amount is the sum of those integers plus goodwill.

Scope, which liquidations count:

* ``reimbursable`` (default, the replay's own rule): the oracle loss of every liquidation (it is
  a loss whatever the verdict) and the bonus of the wrongly eligible ones only (the others would
  have paid it anyway);
* ``wrongly_eligible``: only liquidations the mispricing made possible, oracle loss and bonus;
* ``window``: every liquidation of the mispriced collateral from the first to the last mispriced
  block, oracle loss and bonus, anomalies excepted (a DAO reimbursing everyone liquidated then).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from postmortem.errors import PostmortemError

SCOPES = ("reimbursable", "wrongly_eligible", "window")
ETH_DECIMALS = 18
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_DECIMAL_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def parse_decimal(text: str, what: str, max_places: int) -> Decimal:
    """A non-negative plain decimal (``"0.034902118"``) as an exact Decimal, or a one-sentence error."""
    raw = str(text).strip().replace("_", "")
    if not _DECIMAL_RE.match(raw):
        raise PostmortemError(f"{what} {text!r} is not a plain non-negative decimal number; write it like 0.034902118")
    places = len(raw.split(".", 1)[1]) if "." in raw else 0
    if places > max_places:
        raise PostmortemError(f"{what} {text!r} has {places} decimals; at most {max_places} are meaningful, round it")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        raise PostmortemError(f"{what} {text!r} is not a number") from None


def eth_to_wei(text: str, what: str = "the amount") -> int:
    """``"1.5"`` ETH -> ``1500000000000000000`` wei, exactly; more than 18 decimals is an error."""
    value = parse_decimal(text, what, ETH_DECIMALS)
    return int(value * 10**ETH_DECIMALS)


def parse_bps(text: str | int) -> int:
    raw = str(text).strip()
    if not raw.isdigit() or int(raw) > 10_000:
        raise PostmortemError(f"the bonus basis {text!r} is not a whole number of basis points between 0 and 10000; "
                              "pass e.g. --bonus-bps 100 for 1% of the debt repaid")
    return int(raw)


@dataclass(frozen=True)
class Policy:
    """How reimbursements are valued; the default is the chain's own prices."""

    rate_gap_eth: Decimal | None = None  # ETH per whole unit of the mispriced collateral
    bonus_bps: int | None = None  # basis points of the debt repaid (in ETH)
    goodwill_wei: int = 0  # added once per borrower
    scope: str = "reimbursable"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise PostmortemError(f"unknown reimbursement scope {self.scope!r}; use one of {', '.join(SCOPES)}")
        if self.rate_gap_eth is not None and self.rate_gap_eth < 0:
            raise PostmortemError("the rate gap must not be negative")
        if self.bonus_bps is not None and not 0 <= self.bonus_bps <= 10_000:
            raise PostmortemError("the bonus basis must be between 0 and 10000 basis points")
        if self.goodwill_wei < 0:
            raise PostmortemError("goodwill must not be negative")

    @classmethod
    def from_options(cls, rate_gap: str | None = None, bonus_bps: str | int | None = None,
                     goodwill_eth: str | None = None, scope: str | None = None) -> "Policy":
        """Build a policy from command-line text, with one-sentence errors."""
        return cls(
            rate_gap_eth=None if rate_gap in (None, "") else parse_decimal(rate_gap, "the rate gap", 36),
            bonus_bps=None if bonus_bps in (None, "") else parse_bps(bonus_bps),
            goodwill_wei=0 if goodwill_eth in (None, "") else eth_to_wei(goodwill_eth, "the goodwill amount"),
            scope=(scope or "reimbursable").replace("-", "_"),
        )

    @property
    def uses_chain_prices(self) -> bool:
        return self.rate_gap_eth is None and self.bonus_bps is None

    @property
    def name(self) -> str:
        if self.uses_chain_prices:
            return "the chain's prices" + (" plus goodwill" if self.goodwill_wei else "")
        return "the stated policy"

    def oracle_rule(self, symbol: str) -> str:
        if self.rate_gap_eth is None:
            return ("the oracle loss: (collateral to the liquidator + protocol fee) × (true − reported price), "
                    "in ETH at the true ETH price of its block")
        return (f"collateral to the liquidator × {format(self.rate_gap_eth, 'f')} ETH per {symbol}, where {symbol} "
                "was mispriced at the liquidation (else 0), rounded down to the wei")

    def bonus_rule(self) -> str:
        which = " (wrongly eligible liquidations only)" if self.scope == "reimbursable" else ""
        if self.bonus_bps is None:
            return ("the bonus loss: collateral seized (protocol fee included) × reported price − debt repaid × "
                    f"reported debt price, in ETH at the true ETH price{which}")
        return (f"debt repaid × {self.bonus_bps} basis points, in ETH (other debt at its true price / the true ETH price), "
                f"rounded down to the wei{which}")

    def scope_rule(self) -> str:
        if self.scope == "reimbursable":
            return ("every liquidation the replay judged, for the oracle loss; the wrongly eligible ones (health factor "
                    "below 1 at the reported price, at least 1 at the true price) also for the bonus")
        if self.scope == "wrongly_eligible":
            return ("liquidations that were wrongly eligible (health factor below 1 at the reported price, "
                    "at least 1 at the true price)")
        return ("every liquidation of the mispriced collateral from the first to the last mispriced block "
                "(wrongly eligible or not; anomalies excluded)")

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "scope": self.scope,
            "rate_gap_eth": None if self.rate_gap_eth is None else format(self.rate_gap_eth, "f"),
            "bonus_bps": self.bonus_bps,
            "goodwill_wei": self.goodwill_wei,
        }


def oracle_loss_wei(policy: Policy, *, chain_value: int | None, collateral_amount: int, collateral_decimals: int,
                    is_mispriced_collateral: bool) -> int:
    """The oracle-loss component of one liquidation in wei (rounded down) under ``policy``."""
    if policy.rate_gap_eth is None:
        return int(chain_value or 0)
    if not is_mispriced_collateral:
        return 0
    gap = Fraction(policy.rate_gap_eth)
    return int(Fraction(int(collateral_amount) * 10**ETH_DECIMALS, 10**int(collateral_decimals)) * gap // 1)


def bonus_loss_wei(policy: Policy, *, chain_value: int | None, debt_to_cover: int, debt_decimals: int,
                   debt_is_eth: bool, debt_price: int | None, eth_price: int | None, where: str) -> int:
    """The bonus component of one liquidation in wei (rounded down) under ``policy``.

    ``debt_price`` and ``eth_price`` are base currency units at the liquidation's block; they
    are needed only for debt other than WETH. ``where`` names the liquidation in errors.
    """
    if policy.bonus_bps is None:
        return int(chain_value or 0)
    debt_eth = Fraction(int(debt_to_cover) * 10**ETH_DECIMALS, 10**int(debt_decimals))
    if not debt_is_eth:
        if not debt_price or not eth_price:
            raise PostmortemError(
                f"the liquidation {where} repaid non-WETH debt and the warehouse has no ETH price at its block "
                "to convert it; add WETH to the replay's price_path or leave --bonus-bps out"
            )
        debt_eth = debt_eth * Fraction(int(debt_price), int(eth_price))
    return int(debt_eth * Fraction(policy.bonus_bps, 10_000) // 1)


# --- a published payout, compared line by line ---------------------------------------------------


@dataclass(frozen=True)
class PaidList:
    """Amounts paid per user (wei), read from a CSV with columns ``user,amount_eth``."""

    source: str  # file name as given (no directories, so reports do not leak local paths)
    amounts: dict[str, int]
    lines: dict[str, int]  # how many lines each user had (a multisend may pay someone twice)


def read_paid_csv(path: Path | str) -> PaidList:
    """Read ``user,amount_eth`` lines exactly (no float); a bad line is a one-sentence error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PostmortemError(f"the paid list {path} does not exist; pass the CSV of paid amounts (columns user, amount_eth)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PostmortemError(f"cannot read the paid list {path} ({exc}); pass a UTF-8 CSV file") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise PostmortemError(f"the paid list {path} is empty; it needs a header line 'user,amount_eth' and one line per user")
    names = [h.strip().lower() for h in header]
    if "user" not in names or "amount_eth" not in names:
        raise PostmortemError(f"the paid list {path} needs the columns user and amount_eth; its header is {','.join(header)}")
    iu, ia = names.index("user"), names.index("amount_eth")
    amounts: dict[str, int] = {}
    lines: dict[str, int] = {}
    for n, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(iu, ia):
            raise PostmortemError(f"line {n} of {path} has {len(row)} fields; every line needs user and amount_eth")
        user = row[iu].strip()
        if not _ADDRESS_RE.match(user):
            raise PostmortemError(f"line {n} of {path}: {user!r} is not an address (0x and 40 hex digits)")
        wei = eth_to_wei(row[ia], f"line {n} of {path}: the amount")
        user = user.lower()
        amounts[user] = amounts.get(user, 0) + wei
        lines[user] = lines.get(user, 0) + 1
    return PaidList(path.name, amounts, lines)


STATUS_MATCH = "match"
STATUS_OVERPAID = "overpaid"
STATUS_UNDERPAID = "underpaid"
STATUS_NOT_PAID = "not_paid"  # owed under the policy, absent from the paid list
STATUS_NOT_OWED = "not_owed"  # on the paid list, not owed under the policy


@dataclass
class Comparison:
    """A computed reimbursement list against a paid list, user by user (amounts in wei)."""

    source: str
    tolerance_wei: int
    rows: list[dict] = field(default_factory=list)  # user, owed_wei, paid_wei, difference_wei, paid_lines, status
    owed_total_wei: int = 0
    paid_total_wei: int = 0

    @property
    def difference_total_wei(self) -> int:
        return self.paid_total_wei - self.owed_total_wei

    def users(self, status: str) -> list[str]:
        return [r["user"] for r in self.rows if r["status"] == status]

    @property
    def matches(self) -> int:
        return len(self.users(STATUS_MATCH))

    def to_json(self) -> dict:
        counts = {s: len(self.users(s)) for s in (STATUS_MATCH, STATUS_OVERPAID, STATUS_UNDERPAID,
                                                  STATUS_NOT_PAID, STATUS_NOT_OWED)}
        return {
            "source": self.source, "tolerance_wei": self.tolerance_wei, "rows": self.rows,
            "owed_total_wei": self.owed_total_wei, "paid_total_wei": self.paid_total_wei,
            "difference_total_wei": self.difference_total_wei, "counts": counts,
            "missing_users": self.users(STATUS_NOT_PAID), "extra_users": self.users(STATUS_NOT_OWED),
        }


def compare(owed: dict[str, int], paid: PaidList, tolerance_wei: int = 0) -> Comparison:
    """Compare owed amounts with paid amounts; ``difference = paid - owed`` per user.

    Rows are sorted by the size of the difference (largest first), then by user, so the lines
    that need attention come first and the order never depends on dictionary order.
    """
    out = Comparison(paid.source, tolerance_wei)
    for user in sorted(set(owed) | set(paid.amounts)):
        o = owed.get(user)
        p = paid.amounts.get(user)
        diff = (p or 0) - (o or 0)
        if p is None:
            status = STATUS_NOT_PAID
        elif o is None:
            status = STATUS_NOT_OWED
        elif abs(diff) <= tolerance_wei:
            status = STATUS_MATCH
        else:
            status = STATUS_OVERPAID if diff > 0 else STATUS_UNDERPAID
        out.rows.append({"user": user, "owed_wei": o, "paid_wei": p, "difference_wei": diff,
                         "paid_lines": paid.lines.get(user, 0), "status": status})
        out.owed_total_wei += o or 0
        out.paid_total_wei += p or 0
    out.rows.sort(key=lambda r: (-abs(r["difference_wei"]), r["user"]))
    return out
