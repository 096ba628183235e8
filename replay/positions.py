"""Event-sourced positions: every user's scaled balances, flags and eMode, at any checkpoint.

Start from ``positions_at_start`` (the state at block A-1) and apply, in ``(block, log_index)``
order, what changes a position on chain:

- aToken / variable-debt token ``Mint`` and ``Burn``: the scaled balance of ``on_behalf_of`` /
  ``from_address`` changes by the scaled amount the token minted or burned (see
  :func:`scaled_balance_after`);
- aToken ``BalanceTransfer``: ``value`` is the scaled amount moved (``amount.rayDiv(index)`` in
  ``@aave/core-v3`` 1.19 and v3.3/v3.4, the pool's ``scaledAmount`` from v3.5 on);
- ``ReserveUsedAsCollateralEnabled`` / ``Disabled``: the collateral bit of the user configuration;
- ``UserEModeSet``: the user's eMode category.

The *borrowing* bit has no event: the pool sets it on a first borrow and clears it exactly when a
burn leaves a zero scaled debt (``noMoreDebt``), so it is ``scaled_variable_debt != 0`` (stable
debt, v3.0 only, is not followed here).

All amounts are Python ints, exact. A float mirror of the same state (:class:`FloatMirror`)
lets the engine screen a large population with NumPy; it is never used for a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from postmortem.replay.aave_math import Revision, UserReservePosition, rules_for
from postmortem.replay.aave_math.wad_ray_math import RAY, ray_div
from postmortem.replay.start_columns import StartColumns, has_repeated_positions, start_columns

__all__ = [
    "AssetPosition",
    "PositionBook",
    "PositionError",
    "TokenRef",
    "UserState",
    "invert_token_balance",
    "scaled_balance_after",
]


class PositionError(RuntimeError):
    """An event that does not fit the tracked state (a balance would go negative, a mint
    amount that no scaled amount produces): the inputs are incomplete or inconsistent."""


@dataclass(frozen=True)
class TokenRef:
    """What a token address is: the reserve ``asset`` of ``pool``, kind ``"a"`` or ``"v"``."""

    pool: str
    asset: str
    kind: str  # "a" = aToken (collateral side), "v" = variable-debt token


@dataclass
class AssetPosition:
    """A user's position in one reserve (mutable working copy)."""

    scaled_a_token_balance: int = 0
    scaled_variable_debt: int = 0
    using_as_collateral: bool = False

    @property
    def borrowing(self) -> bool:
        return self.scaled_variable_debt != 0


@dataclass
class UserState:
    """One user in one pool."""

    emode_category: int = 0
    assets: dict[str, AssetPosition] = field(default_factory=dict)

    def asset(self, asset: str) -> AssetPosition:
        pos = self.assets.get(asset)
        if pos is None:
            pos = self.assets[asset] = AssetPosition()
        return pos

    def has_debt(self) -> bool:
        return any(p.scaled_variable_debt for p in self.assets.values())


# --- token math: from Mint / Burn events back to scaled balances ----------------------------------


def invert_token_balance(balance: int, index: int, get_token_balance: Callable[[int, int], int]) -> int:
    """The scaled amount ``s`` with ``get_token_balance(s, index) == balance``.

    ``get_token_balance`` is the revision's ``rayMul`` flavour (floor, ceil or half up). With
    ``index >= RAY`` each one is strictly increasing in ``s`` (one more scaled unit adds at least
    one unit of balance), so the answer is unique when it exists; it lies within one unit of
    ``balance * RAY / index``. Raises :class:`PositionError` when no scaled amount gives ``balance``.
    """
    if balance < 0:
        raise PositionError(f"balance {balance} is negative")
    guess = balance * RAY // index
    for s in (guess, guess + 1, guess - 1, guess + 2):
        if s >= 0 and get_token_balance(s, index) == balance:
            return s
    raise PositionError(f"no scaled amount has balance {balance} at index {index}")


def scaled_balance_after(
    revision: Revision | str,
    kind: str,
    scaled_balance: int,
    event: str,
    value: int,
    balance_increase: int,
    index: int,
) -> int:
    """The scaled balance after a token ``Mint`` or ``Burn`` event (``event`` = "mint" / "burn").

    Every revision emits ``balanceIncrease = balance(s, index) - previousBalance`` and, for a
    ``Mint``, ``value = nextBalance - previousBalance`` (``Burn``: ``previousBalance - nextBalance``);
    a burn smaller than the accrued interest is logged as a ``Mint``, and a transfer logs the
    interest of both parties as a ``Mint`` with ``value == balanceIncrease`` (no scaled change).

    - v3.5+ (``TokenMath``): ``nextBalance = getTokenBalance(s', index)`` exactly, so
      ``s' = invert(balance(s, index) - balanceIncrease ± value)`` with the token's rounding
      (``rayMulFloor`` for aTokens, ``rayMulCeil`` for debt tokens).
    - up to v3.4 (``@aave/core-v3`` 1.19, v3.3, v3.4): the token was given an ``amount`` and
      changed the scaled balance by ``amount.rayDiv(index)``; ``amount = value - balanceIncrease``
      for a ``Mint`` (negative: a burn), ``value + balanceIncrease`` for a ``Burn``.
    """
    rules = rules_for(revision)
    signed = value - balance_increase if event == "mint" else -(value + balance_increase)
    if signed == 0:
        return scaled_balance
    if rules.pool_passes_scaled_amounts:
        get_balance = rules.get_a_token_balance if kind == "a" else rules.get_v_token_balance
        current = get_balance(scaled_balance, index)
        new = invert_token_balance(current + signed, index, get_balance)
    else:
        delta = ray_div(abs(signed), index)
        new = scaled_balance + delta if signed > 0 else scaled_balance - delta
    if new < 0:
        raise PositionError(f"scaled balance {scaled_balance} would become {new}")
    return new


# --- the book -------------------------------------------------------------------------------------


class PositionBook:
    """Every user's position in every tracked pool, updated event by event.

    ``tokens`` maps token addresses (aTokens and variable-debt tokens) to :class:`TokenRef`;
    ``revisions`` maps pool addresses to their :class:`Revision`. Addresses are lowercase.
    """

    def __init__(self, tokens: Mapping[str, TokenRef], revisions: Mapping[str, Revision | str],
                 mirror: "FloatMirror | None" = None):
        self.tokens = dict(tokens)
        self.revisions = {pool: Revision(rev) for pool, rev in revisions.items()}
        self._users: dict[tuple[str, str], UserState] = {}
        self._start: dict[str, StartColumns] = {}  # columnar start state, materialized user by user
        self._start_loaded: dict[str, np.ndarray] = {}
        self._start_users = 0
        self._start_users_loaded = 0
        self.mirror = mirror
        self.events_applied = 0
        self._positions: dict[tuple[str, str], tuple[UserReservePosition, ...]] = {}

    # ---- reading

    @property
    def users(self) -> "_UsersView":
        """Every ``(pool, user) -> UserState`` (a columnar start state is materialized when iterated)."""
        return _UsersView(self)

    def _state(self, pool: str, user: str, create: bool = False) -> UserState | None:
        key = (pool, user)
        state = self._users.get(key)
        if state is None:
            state = self._materialize(pool, user)
            if state is None and create:
                state = self._users[key] = UserState()
        return state

    def _materialize(self, pool: str, user: str) -> UserState | None:
        """The exact state of a user of the columnar start state, built on first use."""
        sc = self._start.get(pool)
        if sc is None:
            return None
        j = sc.find(user)
        if j is None or self._start_loaded[pool][j]:
            return None
        self._start_loaded[pool][j] = True
        self._start_users_loaded += 1
        state = self._users[(pool, user)] = UserState(emode_category=int(sc.emode[j]))
        for r in range(int(sc.first[j]), int(sc.first[j] + sc.count[j])):
            code = int(sc.asset_code[r])
            if code < 0:
                continue
            name = sc.asset_names[code]
            pos = state.asset(name)
            pos.scaled_a_token_balance = sc.exact(sc.a_words, r)
            pos.scaled_variable_debt = sc.exact(sc.d_words, r)
            pos.using_as_collateral = bool(sc.collateral[r])
        return state

    def user(self, pool: str, user: str) -> UserState | None:
        return self._state(pool, user)

    def positions(self, pool: str, user: str) -> tuple[UserReservePosition, ...]:
        """The user's positions as :mod:`replay.aave_math` takes them (flagged reserves only), by asset.

        Cached until an event touches the user, so an unchanged user gives the same tuple object.
        """
        cached = self._positions.get((pool, user))
        if cached is not None:
            return cached
        state = self._state(pool, user)
        if state is None:
            return ()
        out = self._positions[(pool, user)] = tuple(
            UserReservePosition(
                asset=asset,
                scaled_a_token_balance=p.scaled_a_token_balance,
                scaled_variable_debt=p.scaled_variable_debt,
                using_as_collateral=p.using_as_collateral,
                borrowing=p.borrowing,
            )
            for asset, p in sorted(state.assets.items())
            if p.using_as_collateral or p.borrowing
        )
        return out

    def emode(self, pool: str, user: str) -> int:
        state = self._users.get((pool, user))
        if state is None and pool in self._start:
            sc = self._start[pool]
            j = sc.find(user)
            return int(sc.emode[j]) if j is not None else 0
        return state.emode_category if state else 0

    def scaled_balances(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """``(pool, user, asset) -> (scaled aToken balance, scaled variable debt)``, non-zero only."""
        out = {}
        for (pool, user), state in self.users.items():
            for asset, p in state.assets.items():
                if p.scaled_a_token_balance or p.scaled_variable_debt:
                    out[(pool, user, asset)] = (p.scaled_a_token_balance, p.scaled_variable_debt)
        return out

    # ---- loading the start state

    def load_start(self, rows: Iterable[Mapping]) -> None:
        """Rows of ``positions_at_start``: pool, user, asset, emode_category,
        scaled_a_token_balance, scaled_variable_debt, using_as_collateral.

        An Arrow table (or record batch) is loaded by columns (:meth:`load_start_columns`)."""
        if hasattr(rows, "column") and hasattr(rows, "schema"):
            self.load_start_columns(rows)
            return
        for row in rows:
            pool, user = row["pool"], row["user"]
            state = self._state(pool, user, create=True)
            state.emode_category = int(row.get("emode_category") or 0)
            asset = row.get("asset")
            if asset is None:
                continue
            pos = state.asset(asset)
            pos.scaled_a_token_balance = int(row.get("scaled_a_token_balance") or 0)
            pos.scaled_variable_debt = int(row.get("scaled_variable_debt") or 0)
            pos.using_as_collateral = bool(row.get("using_as_collateral"))
            self._touch(pool, user, asset)

    def load_start_columns(self, table) -> None:
        """``positions_at_start`` as an Arrow table, into the book and its float mirror, without a
        Python object per row (:mod:`replay.start_columns`); each user's exact state is built from
        the columns the first time an event or the scalar reference needs it. Must come before any
        other change to the book; pools with no mirror (not tracked) are skipped."""
        if self._users or self._start or self.mirror is None:
            raise RuntimeError("load_start_columns needs an empty book with a float mirror")
        assets_by_pool = {pool: m.assets for pool, m in self.mirror.pools.items()}
        columns = start_columns(table, assets_by_pool)
        if has_repeated_positions(columns):  # not what an ingest writes: load it row by row, as before
            self.load_start(table.to_pylist())
            return
        for pool, sc in columns.items():
            self._start[pool] = sc
            self._start_loaded[pool] = np.zeros(len(sc.users), dtype=bool)
            self._start_users += len(sc.users)
            self.mirror.pools[pool].load_start(sc)

    # ---- events

    def apply_token_event(self, token: str, event: str, user: str, value: int, balance_increase: int,
                          index: int) -> bool:
        """A ``Mint`` (``user`` = onBehalfOf) or ``Burn`` (``user`` = from) of ``token``.

        Returns False when the token is not tracked.
        """
        ref = self.tokens.get(token)
        if ref is None:
            return False
        pos = self._state(ref.pool, user, create=True).asset(ref.asset)
        revision = self.revisions[ref.pool]
        try:
            if ref.kind == "a":
                pos.scaled_a_token_balance = scaled_balance_after(
                    revision, "a", pos.scaled_a_token_balance, event, value, balance_increase, index)
            else:
                pos.scaled_variable_debt = scaled_balance_after(
                    revision, "v", pos.scaled_variable_debt, event, value, balance_increase, index)
        except PositionError as exc:
            raise PositionError(f"{event} of {token} for {user}: {exc}") from None
        self.events_applied += 1
        self._touch(ref.pool, user, ref.asset)
        return True

    def apply_balance_transfer(self, token: str, from_address: str, to_address: str, scaled_value: int) -> bool:
        """An aToken ``BalanceTransfer``: ``scaled_value`` moves from one user to the other."""
        ref = self.tokens.get(token)
        if ref is None or ref.kind != "a":
            return False
        if from_address == to_address:
            return True
        src = self._state(ref.pool, from_address, create=True).asset(ref.asset)
        if src.scaled_a_token_balance < scaled_value:
            raise PositionError(
                f"BalanceTransfer of {scaled_value} scaled {token} from {from_address}, who holds "
                f"{src.scaled_a_token_balance}"
            )
        src.scaled_a_token_balance -= scaled_value
        dst = self._state(ref.pool, to_address, create=True).asset(ref.asset)
        dst.scaled_a_token_balance += scaled_value
        self.events_applied += 1
        self._touch(ref.pool, from_address, ref.asset)
        self._touch(ref.pool, to_address, ref.asset)
        return True

    def apply_collateral_toggle(self, pool: str, asset: str, user: str, enabled: bool) -> None:
        self._state(pool, user, create=True).asset(asset).using_as_collateral = bool(enabled)
        self.events_applied += 1
        self._touch(pool, user, asset)

    def apply_emode(self, pool: str, user: str, category_id: int) -> None:
        state = self._state(pool, user, create=True)
        state.emode_category = int(category_id)
        self.events_applied += 1
        self._positions.pop((pool, user), None)
        if self.mirror is not None:
            self.mirror.set_emode(pool, user, state.emode_category)

    def _touch(self, pool: str, user: str, asset: str) -> None:
        self._positions.pop((pool, user), None)
        if self.mirror is not None:
            state = self._users[(pool, user)]
            self.mirror.set(pool, user, asset, state.asset(asset), state.emode_category)


def _float_pair(amount: int) -> tuple[float, float]:
    """``amount`` as ``(float(amount), amount - float(amount))``: exact below 2**106."""
    head = float(amount)
    return head, float(amount - int(head))


class _UsersView(Mapping):
    """``PositionBook.users``: a mapping over the materialized users and the columnar start state.
    Its length costs nothing; iterating it materializes every start user."""

    def __init__(self, book: PositionBook):
        self._book = book

    def __len__(self) -> int:
        b = self._book
        return len(b._users) + b._start_users - b._start_users_loaded

    def __getitem__(self, key: tuple[str, str]) -> UserState:
        state = self._book._state(*key)
        if state is None:
            raise KeyError(key)
        return state

    def __contains__(self, key) -> bool:
        return self._book._state(*key) is not None

    def __iter__(self):
        b = self._book
        for pool, sc in b._start.items():
            for j in np.nonzero(~b._start_loaded[pool])[0].tolist():
                b._materialize(pool, sc.name(j))
        return iter(list(b._users))


class _UserNames:
    """A pool mirror's users by number: the start state's (sorted bytes, found by binary search) then
    those seen later (a list and a dict)."""

    def __init__(self) -> None:
        self.start: StartColumns | None = None
        self.n0 = 0
        self.extra: list[str] = []
        self.extra_index: dict[str, int] = {}
        self._extra_bytes: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n0 + len(self.extra)

    def __getitem__(self, i: int) -> str:
        return self.start.name(i) if i < self.n0 else self.extra[i - self.n0]

    def as_bytes(self, ids: np.ndarray) -> np.ndarray:
        """The addresses of users ``ids`` as fixed-width bytes (sorting them sorts the addresses),
        with no Python object per user of the start state."""
        ids = np.asarray(ids, dtype=np.int64)
        start = self.start.users if self.n0 else np.zeros(0, "S1")
        if not self.extra:
            return start[ids]
        if self._extra_bytes is None or len(self._extra_bytes) != len(self.extra):
            self._extra_bytes = np.array([u.encode() for u in self.extra], dtype=bytes)
        out = np.empty(len(ids), dtype=np.result_type(start.dtype, self._extra_bytes.dtype))
        late = ids >= self.n0
        out[~late] = start[ids[~late]]
        out[late] = self._extra_bytes[ids[late] - self.n0]
        return out

    def find(self, user: str) -> int | None:
        if self.n0:
            j = self.start.find(user)
            if j is not None:
                return j
        return self.extra_index.get(user)

    def add(self, user: str) -> int:
        u = self.extra_index[user] = self.n0 + len(self.extra)
        self.extra.append(user)
        return u


class FloatMirror:
    """A NumPy copy of the book, per pool, for screening many positions at once.

    One row per (user, asset) ever seen; one slot per user (its eMode category). Updated in
    O(1) by :class:`PositionBook` on every change. Floats only: for screening, never verdicts.
    """

    def __init__(self, assets_by_pool: Mapping[str, list[str]]):
        self.pools: dict[str, _PoolMirror] = {pool: _PoolMirror(list(assets)) for pool, assets in assets_by_pool.items()}

    def set(self, pool: str, user: str, asset: str, pos: AssetPosition, emode: int) -> None:
        mirror = self.pools.get(pool)
        if mirror is not None:
            mirror.set(user, asset, pos, emode)

    def set_emode(self, pool: str, user: str, emode: int) -> None:
        mirror = self.pools.get(pool)
        if mirror is not None:
            mirror.set_emode(user, emode)


class _PoolMirror:
    incremental_screen = True  # screen_below recomputes only the users a bound cannot rule out
    def __init__(self, assets: list[str]):
        self.assets = assets
        self.asset_index = {a: i for i, a in enumerate(assets)}
        self.users = _UserNames()
        self.row_index: dict[tuple[int, int], int] = {}  # rows added after the start state
        self.start_first = np.zeros(0, dtype=np.int64)  # per start user: its first row and row count
        self.start_count = np.zeros(0, dtype=np.int64)
        self.n_rows = 0
        cap = 1024
        self.row_user = np.zeros(cap, dtype=np.int64)
        self.row_asset = np.zeros(cap, dtype=np.int64)
        self.scaled_a = np.zeros(cap)
        self.scaled_d = np.zeros(cap)
        self.scaled_a_rest = np.zeros(cap)  # amount - float(amount), exact: the pair is the amount to 106 bits
        self.scaled_d_rest = np.zeros(cap)
        self.collateral = np.zeros(cap, dtype=bool)
        self.emode = np.zeros(1024, dtype=np.int64)
        self.version = 0  # bumped on every change; the screen's per-user matrices are cached on it
        self._dense: tuple | None = None
        self._reference: tuple | None = None  # the last full screen, for screen_below
        self.partial_screens = 0

    def load_start(self, sc: StartColumns) -> None:
        """The start state's users and rows in bulk (an empty mirror only); rows of assets that are not
        reserves of the pool are left out, as :meth:`set` leaves them out."""
        if self.n_rows or len(self.users):
            raise RuntimeError("a mirror's start state goes in first")
        n_users = len(sc.users)
        keep = sc.row_asset >= 0
        row_user = np.repeat(np.arange(n_users, dtype=np.int64), sc.count)[keep]
        n = len(row_user)
        spare = 1024
        self.users.start, self.users.n0 = sc, n_users
        self.row_user = np.concatenate([row_user, np.zeros(spare, dtype=np.int64)])
        self.row_asset = np.concatenate([sc.row_asset[keep], np.zeros(spare, dtype=np.int64)])
        self.scaled_a = np.concatenate([sc.scaled_a[keep], np.zeros(spare)])
        self.scaled_d = np.concatenate([sc.scaled_d[keep], np.zeros(spare)])
        self.scaled_a_rest = np.concatenate([sc.scaled_a_rest[keep], np.zeros(spare)])
        self.scaled_d_rest = np.concatenate([sc.scaled_d_rest[keep], np.zeros(spare)])
        self.collateral = np.concatenate([sc.collateral[keep], np.zeros(spare, dtype=bool)])
        self.emode = np.concatenate([sc.emode, np.zeros(spare, dtype=np.int64)])
        self.start_count = np.bincount(row_user, minlength=n_users).astype(np.int64)
        self.start_first = np.cumsum(self.start_count) - self.start_count
        self.n_rows = n
        self.version += 1

    def _user(self, user: str) -> int:
        u = self.users.find(user)
        if u is None:
            u = self.users.add(user)
            if u >= len(self.emode):
                self.emode = np.concatenate([self.emode, np.zeros(len(self.emode), dtype=np.int64)])
        return u

    def _row(self, u: int, a: int) -> int | None:
        if u < len(self.start_first):
            f = int(self.start_first[u])
            hits = np.nonzero(self.row_asset[f:f + int(self.start_count[u])] == a)[0]
            if len(hits):
                return f + int(hits[0])
        return self.row_index.get((u, a))

    def set_emode(self, user: str, emode: int) -> None:
        self.emode[self._user(user)] = emode
        self.version += 1

    def set(self, user: str, asset: str, pos: AssetPosition, emode: int) -> None:
        a = self.asset_index.get(asset)
        if a is None:
            return
        u = self._user(user)
        self.emode[u] = emode
        self.version += 1
        r = self._row(u, a)
        if r is None:
            r = self.row_index[(u, a)] = self.n_rows
            self.n_rows += 1
            if r >= len(self.row_user):
                grow = len(self.row_user)
                self.row_user = np.concatenate([self.row_user, np.zeros(grow, dtype=np.int64)])
                self.row_asset = np.concatenate([self.row_asset, np.zeros(grow, dtype=np.int64)])
                self.scaled_a = np.concatenate([self.scaled_a, np.zeros(grow)])
                self.scaled_d = np.concatenate([self.scaled_d, np.zeros(grow)])
                self.scaled_a_rest = np.concatenate([self.scaled_a_rest, np.zeros(grow)])
                self.scaled_d_rest = np.concatenate([self.scaled_d_rest, np.zeros(grow)])
                self.collateral = np.concatenate([self.collateral, np.zeros(grow, dtype=bool)])
            self.row_user[r] = u
            self.row_asset[r] = a
        self.scaled_a[r], self.scaled_a_rest[r] = _float_pair(pos.scaled_a_token_balance)
        self.scaled_d[r], self.scaled_d_rest[r] = _float_pair(pos.scaled_variable_debt)
        self.collateral[r] = pos.using_as_collateral

    def screen(self, income: np.ndarray, debt_index: np.ndarray, unit: np.ndarray, prices: list[np.ndarray],
               lt_table: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Approximate health factors (floats, 1.0 = HF 1) of every user with debt.

        ``income``/``debt_index``/``unit`` per asset (floats, indexes in ray units divided by
        RAY); ``prices`` a list of per-asset price vectors (one per price model); ``lt_table[c, a]``
        the liquidation threshold (bps) of asset ``a`` for a user in eMode category ``c``
        (row 0: no eMode). Returns ``(user ids with debt, [hf per price model])``.
        """
        # The price-independent part is cached until the book or the LT table changes: per user with
        # debt and per asset, the collateral (scaled, times LT, per unit) and the debt (scaled, per
        # unit). A checkpoint is then two (users x assets) @ (assets x models) products instead of
        # per-row gathers and bincounts over every row: ~10x faster at a million positions.
        dense = self._dense
        if dense is None or dense[0] != self.version or dense[1] is not lt_table:
            dense = self._dense = (self.version, lt_table, *self._dense_matrices(lt_table))
        _, _, has_debt, coll, debt = dense
        per_unit = 1.0 / unit
        p = np.stack(prices)  # price models x assets
        weighted = (p * (income * per_unit)) @ coll  # models x users (coll, debt are assets x users)
        owed = (p * (debt_index * per_unit)) @ debt
        with np.errstate(divide="ignore", invalid="ignore"):
            hf = weighted / owed
        hf[~(owed > 0)] = np.inf
        return has_debt, list(hf)

    def screen_below(self, band: float, income: np.ndarray, debt_index: np.ndarray, unit: np.ndarray,
                     prices: list[np.ndarray], lt_table: np.ndarray) -> tuple[np.ndarray, int]:
        """Users with debt whose float health factor under some price model is below ``band``, and how
        many users the screen covered (all users with debt).

        Same arguments and floats as :meth:`screen`, but most users are not recomputed: after a full
        screen (at ``t0``) the users are kept sorted by their lowest health factor ``h0``. For any
        user, ``HF(t) = sum_a c_a w_a(t) / sum_a d_a v_a(t)`` with non-negative per-asset amounts and
        weights (``w`` = price x income / unit, ``v`` = price x debt index / unit), so
        ``HF(t) >= HF(t0) * min_a(w_a(t)/w_a(t0)) / max_a(v_a(t)/v_a(t0))`` (a ratio of sums lies
        between the smallest and largest ratio of terms). With ``f`` the smallest such factor over the
        price models, a user with ``h0 >= band / f`` (times ``1 + 1e-9``, far above the float error
        of these sums of positive terms) cannot be below the band: only the sorted prefix under that
        limit is recomputed. A full screen runs again when the book or the LT table changes, when a
        weight is not positive, or when the prefix is over an eighth of the users (the reference is then
        renewed at the current prices).
        """
        dense = self._dense
        if dense is None or dense[0] != self.version or dense[1] is not lt_table:
            dense = self._dense = (self.version, lt_table, *self._dense_matrices(lt_table))
        _, _, has_debt, coll, debt = dense
        per_unit = 1.0 / unit
        p = np.stack(prices)
        w = p * (income * per_unit)
        v = p * (debt_index * per_unit)
        ref = self._reference if self.incremental_screen else None
        if ref is not None and ref[0] is dense and ref[1].shape == w.shape:
            _, w0, v0, ids, h0, coll_s, debt_s = ref
            if (w0 > 0).all() and (v0 > 0).all() and (w > 0).all() and (v > 0).all():
                f = float(((w / w0).min(axis=1) / (v / v0).max(axis=1)).min())
                k = int(np.searchsorted(h0, band / f * (1.0 + 1e-9), side="left")) if f > 0 else len(h0)
                if k <= len(h0) // 8:
                    self.partial_screens += 1
                    weighted = w @ coll_s[:, :k]
                    owed = v @ debt_s[:, :k]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        hf = weighted / owed
                    hf[~(owed > 0)] = np.inf
                    return ids[:k][hf.min(axis=0) < band], len(has_debt)
        weighted = w @ coll
        owed = v @ debt
        with np.errstate(divide="ignore", invalid="ignore"):
            hf = weighted / owed
        hf[~(owed > 0)] = np.inf
        low = hf.min(axis=0)
        order = np.argsort(low, kind="stable")
        self._reference = (dense, w, v, has_debt[order], low[order], np.ascontiguousarray(coll[:, order]),
                           np.ascontiguousarray(debt[:, order]))
        return has_debt[low < band], len(has_debt)

    def _dense_matrices(self, lt_table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, k = self.n_rows, len(self.assets)
        n_users = len(self.users)
        users = self.row_user[:n]
        assets = self.row_asset[:n]
        cat = self.emode[users]
        cat = np.where(cat < lt_table.shape[0], cat, 0)
        lt = lt_table[cat, assets]
        flat = users * k + assets
        coll = np.bincount(flat, weights=np.where(self.collateral[:n], self.scaled_a[:n], 0.0) * lt / 10_000.0,
                           minlength=n_users * k).reshape(n_users, k)
        debt = np.bincount(flat, weights=self.scaled_d[:n], minlength=n_users * k).reshape(n_users, k)
        has_debt = np.nonzero(debt.sum(axis=1) > 0)[0]
        return has_debt, np.ascontiguousarray(coll[has_debt].T), np.ascontiguousarray(debt[has_debt].T)
