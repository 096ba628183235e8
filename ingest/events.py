"""The event catalogue: every log the ingest stage decodes, and the raw-log contract.

Each event is declared once, by its Solidity declaration copied from the contract that
emits it (Aave v3.6 ``IPool``, ``IScaledBalanceToken``, ``IAToken``, ``IPoolConfigurator``,
``IAaveOracle``; Chainlink ``AggregatorInterface``; ERC-20; the capped-ratio adapter), so a
reviewer can compare the two line by line. Everything else (ABI signature, topic0, the
number of topics, the data layout, column names and Arrow types of the decoded table) is
derived from that declaration here, in one place.

Column naming: Solidity camelCase becomes snake_case (``onBehalfOf`` -> ``on_behalf_of``,
``useATokens`` -> ``use_a_tokens``); ``from``/``to`` become ``from_address``/``to_address``
(both are SQL keywords); Chainlink's ``AnswerUpdated.current`` becomes ``answer``.

Column types (one type per ABI type, across every table):

- ``address``                     -> ``string``, ``0x`` + 40 lowercase hex digits
- ``uintN`` for N <= 31 bits       -> ``int32``; ``uintN`` for 32 <= N <= 63 -> ``int64``
- ``intN`` for N <= 32            -> ``int32``; ``intN`` for 33 <= N <= 64 -> ``int64``
- wider ``uintN``/``intN`` (incl. uint256/int256) -> ``decimal128(38, 0)``: exact, in the
  token's or protocol's own raw unit (wei, ray, bps, base units ...). A value that does not
  fit 38 decimal digits is a :class:`DecodeError`, never a rounded or null value.
- ``bool``                        -> ``bool``
- ``string``                      -> ``string`` (UTF-8)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from eth_utils import keccak

from postmortem.errors import PostmortemError

__all__ = [
    "ADDRESS_TYPE",
    "COMMON_COLUMNS",
    "DECIMAL_TYPE",
    "EVENTS",
    "EVENTS_BY_TOPIC0",
    "Event",
    "DecodeError",
    "Param",
    "RAW_LOG_SCHEMA",
    "TABLE_SCHEMAS",
    "UNDECODED_SCHEMA",
    "UNDECODED_TABLE",
    "column_type",
    "event",
    "events_for_table",
    "snake_case",
    "table_schema",
]


class DecodeError(PostmortemError, ValueError):
    """A log that cannot be decoded exactly: malformed, or not the layout its topic0 claims.

    The message names the block number and log index (and the event and field when known)
    so that the offending log can be fetched again with ``eth_getLogs``.
    """

    def __init__(
        self,
        message: str,
        *,
        block_number: int | None = None,
        log_index: int | None = None,
        event: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.block_number = block_number
        self.log_index = log_index
        self.event = event
        self.field = field


# --------------------------------------------------------------------------------------
# The raw-log contract (what the JSON-RPC client hands to the decoder).
# --------------------------------------------------------------------------------------

#: 32-byte words of topics: null when the log has fewer topics.
TOPIC_TYPE = pa.binary(32)
#: Exact integers of up to 38 decimal digits (uint256 values that real protocols emit).
DECIMAL_TYPE = pa.decimal128(38, 0)
#: Addresses as 0x + 40 lowercase hex digits.
ADDRESS_TYPE = pa.string()

RAW_LOG_SCHEMA = pa.schema(
    [
        pa.field("block_number", pa.int64(), nullable=False),
        pa.field("block_hash", pa.string(), nullable=False),
        pa.field("transaction_hash", pa.string(), nullable=False),
        pa.field("transaction_index", pa.int32(), nullable=False),
        pa.field("log_index", pa.int32(), nullable=False),
        pa.field("address", ADDRESS_TYPE, nullable=False),
        pa.field("topic0", TOPIC_TYPE),
        pa.field("topic1", TOPIC_TYPE),
        pa.field("topic2", TOPIC_TYPE),
        pa.field("topic3", TOPIC_TYPE),
        pa.field("data", pa.binary(), nullable=False),
    ]
)

#: Columns every decoded table starts with, copied from the raw log.
COMMON_COLUMNS: tuple[str, ...] = (
    "block_number",
    "block_hash",
    "transaction_hash",
    "transaction_index",
    "log_index",
    "address",
)
_COMMON_FIELDS = [RAW_LOG_SCHEMA.field(name) for name in COMMON_COLUMNS]

#: Logs whose topic0 is in the catalogue but whose layout is not (non-strict mode only).
UNDECODED_TABLE = "undecoded"
UNDECODED_SCHEMA = pa.schema(
    [
        *_COMMON_FIELDS,
        pa.field("topic0", TOPIC_TYPE),
        pa.field("event", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
    ]
)


# --------------------------------------------------------------------------------------
# Declarations -> parameters, topic0, layout, schema.
# --------------------------------------------------------------------------------------

# Names that would be SQL keywords or misleading once out of their contract.
_COLUMN_RENAMES = {"from": "from_address", "to": "to_address"}

_TYPE_RE = re.compile(r"^(address|bool|string|u?int(\d{1,3})?)$")


def snake_case(name: str) -> str:
    """``onBehalfOf`` -> ``on_behalf_of``; ``useATokens`` -> ``use_a_tokens``."""
    # Split before an upper-case letter that starts a word (aToken -> a_Token) and
    # between an acronym and the next word (ATokens -> A_Tokens).
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def column_type(abi_type: str) -> pa.DataType:
    """The Arrow type a decoded ``abi_type`` value is stored as (see the module docstring)."""
    if abi_type == "address":
        return ADDRESS_TYPE
    if abi_type == "bool":
        return pa.bool_()
    if abi_type == "string":
        return pa.string()
    bits = int_bits(abi_type)
    if abi_type.startswith("uint"):
        return pa.int32() if bits <= 31 else pa.int64() if bits <= 63 else DECIMAL_TYPE
    return pa.int32() if bits <= 32 else pa.int64() if bits <= 64 else DECIMAL_TYPE


def int_bits(abi_type: str) -> int:
    """Width in bits of ``uintN``/``intN`` (``uint`` alone means 256)."""
    digits = abi_type.removeprefix("u").removeprefix("int")
    return int(digits) if digits else 256


@dataclass(frozen=True)
class Param:
    """One event parameter.

    ``name`` is the Solidity name, ``abi_type`` the canonical ABI type (enums are
    ``uint8``), ``column`` the decoded table's column name.
    """

    name: str
    abi_type: str
    indexed: bool
    column: str

    @property
    def arrow_type(self) -> pa.DataType:
        return column_type(self.abi_type)

    @property
    def is_dynamic(self) -> bool:
        return self.abi_type == "string"


@dataclass(frozen=True)
class Event:
    """An event the decoder knows: its parameters and the table its rows go to.

    ``constants`` are extra columns whose value is fixed by the event itself (e.g.
    ``enabled`` for the two ReserveUsedAsCollateral* events sharing one table).
    """

    name: str
    table: str
    params: tuple[Param, ...]
    emitter: str
    constants: tuple[tuple[str, pa.DataType, Any], ...] = ()
    topic0: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "topic0", keccak(text=self.signature))

    @property
    def signature(self) -> str:
        """Canonical ABI signature, e.g. ``Transfer(address,address,uint256)``."""
        return f"{self.name}({','.join(p.abi_type for p in self.params)})"

    @property
    def topic0_hex(self) -> str:
        return "0x" + self.topic0.hex()

    @property
    def indexed(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.indexed)

    @property
    def non_indexed(self) -> tuple[Param, ...]:
        """Parameters ABI-encoded in ``data``, in order (one 32-byte head word each)."""
        return tuple(p for p in self.params if not p.indexed)

    @property
    def n_topics(self) -> int:
        """Topics a log of this event carries: topic0 plus one per indexed parameter."""
        return 1 + len(self.indexed)

    @property
    def is_dynamic(self) -> bool:
        """True when ``data`` has a variable-length tail (a ``string`` parameter)."""
        return any(p.is_dynamic for p in self.non_indexed)

    @property
    def head_size(self) -> int:
        """Bytes of the static head of ``data`` (the whole of ``data`` for a static event)."""
        return 32 * len(self.non_indexed)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [
                *_COMMON_FIELDS,
                *(pa.field(p.column, p.arrow_type) for p in self.params),
                *(pa.field(name, typ) for name, typ, _ in self.constants),
            ]
        )

    def abi(self) -> dict:
        """The JSON ABI fragment of this event (what web3 / eth_abi take)."""
        return {
            "type": "event",
            "name": self.name,
            "anonymous": False,
            "inputs": [
                {"name": p.name, "type": p.abi_type, "indexed": p.indexed} for p in self.params
            ],
        }


def event(
    declaration: str,
    *,
    table: str,
    emitter: str,
    renames: dict[str, str] | None = None,
    constants: tuple[tuple[str, pa.DataType, Any], ...] = (),
) -> Event:
    """Build an :class:`Event` from its Solidity declaration.

    ``declaration`` looks like ``"Transfer(address indexed from, address indexed to, uint256 value)"``;
    ``renames`` maps Solidity parameter names to column names where snake_case is not enough.
    """
    m = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*;?\s*", declaration, flags=re.S)
    if not m:
        raise ValueError(f"not an event declaration: {declaration!r}")
    name, body = m.group(1), m.group(2)
    params = []
    for raw in filter(None, (part.strip() for part in body.split(","))):
        words = raw.split()
        if len(words) == 3 and words[1] == "indexed":
            abi_type, indexed, pname = words[0], True, words[2]
        elif len(words) == 2:
            abi_type, indexed, pname = words[0], False, words[1]
        else:
            raise ValueError(f"{name}: cannot parse parameter {raw!r}")
        if abi_type in ("uint", "int"):
            abi_type += "256"
        tm = _TYPE_RE.match(abi_type)
        if not tm or (tm.group(2) and not (8 <= int(tm.group(2)) <= 256 and int(tm.group(2)) % 8 == 0)):
            raise ValueError(f"{name}: ABI type {abi_type!r} is not supported by the decoder")
        if indexed and abi_type == "string":
            # An indexed string is only its keccak hash in the topic: nothing to decode.
            raise ValueError(f"{name}: indexed dynamic parameters are not supported")
        column = (renames or {}).get(pname) or _COLUMN_RENAMES.get(pname) or snake_case(pname)
        params.append(Param(pname, abi_type, indexed, column))
    if sum(p.indexed for p in params) > 3:
        raise ValueError(f"{name}: a non-anonymous event has at most 3 indexed parameters")
    return Event(name, table, tuple(params), emitter, constants)


# --------------------------------------------------------------------------------------
# The catalogue. Declarations are copied from the sources named in ``emitter``.
# --------------------------------------------------------------------------------------

_POOL = "Pool (aave-v3-origin 3.6 IPool.sol)"
_TOKEN = "AToken / VariableDebtToken (IScaledBalanceToken.sol, IAToken.sol)"
_CONFIGURATOR = "PoolConfigurator (aave-v3-origin 3.6 IPoolConfigurator.sol)"
_CHAINLINK = "Chainlink aggregator (AggregatorInterface.sol)"

EVENTS: tuple[Event, ...] = (
    # Pool
    event(
        "Supply(address indexed reserve, address user, address indexed onBehalfOf,"
        " uint256 amount, uint16 indexed referralCode)",
        table="supplies", emitter=_POOL,
    ),
    event(
        "Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount)",
        table="withdraws", emitter=_POOL,
    ),
    event(
        # interestRateMode is the enum DataTypes.InterestRateMode: ABI type uint8.
        "Borrow(address indexed reserve, address user, address indexed onBehalfOf, uint256 amount,"
        " uint8 interestRateMode, uint256 borrowRate, uint16 indexed referralCode)",
        table="borrows", emitter=_POOL,
    ),
    event(
        "Repay(address indexed reserve, address indexed user, address indexed repayer,"
        " uint256 amount, bool useATokens)",
        table="repays", emitter=_POOL,
    ),
    event(
        "LiquidationCall(address indexed collateralAsset, address indexed debtAsset,"
        " address indexed user, uint256 debtToCover, uint256 liquidatedCollateralAmount,"
        " address liquidator, bool receiveAToken)",
        table="liquidations", emitter=_POOL,
    ),
    event(
        "ReserveDataUpdated(address indexed reserve, uint256 liquidityRate, uint256 stableBorrowRate,"
        " uint256 variableBorrowRate, uint256 liquidityIndex, uint256 variableBorrowIndex)",
        table="reserve_updates", emitter=_POOL,
    ),
    event(
        "ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user)",
        table="collateral_toggles", emitter=_POOL,
        constants=(("enabled", pa.bool_(), True),),
    ),
    event(
        "ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user)",
        table="collateral_toggles", emitter=_POOL,
        constants=(("enabled", pa.bool_(), False),),
    ),
    event("UserEModeSet(address indexed user, uint8 categoryId)", table="emode_changes", emitter=_POOL),
    event(
        "DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated)",
        table="deficits", emitter=_POOL,
    ),
    # aToken and variable-debt token
    event(
        "Mint(address indexed caller, address indexed onBehalfOf, uint256 value,"
        " uint256 balanceIncrease, uint256 index)",
        table="token_mints", emitter=_TOKEN,
    ),
    event(
        "Burn(address indexed from, address indexed target, uint256 value,"
        " uint256 balanceIncrease, uint256 index)",
        table="token_burns", emitter=_TOKEN,
    ),
    event(
        "BalanceTransfer(address indexed from, address indexed to, uint256 value, uint256 index)",
        table="balance_transfers", emitter=_TOKEN,
    ),
    event(
        "Transfer(address indexed from, address indexed to, uint256 value)",
        table="transfers", emitter="any ERC-20 (IERC20.sol), aTokens included",
    ),
    # Oracles
    event(
        "AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt)",
        table="oracle_answers", emitter=_CHAINLINK, renames={"current": "answer"},
    ),
    event(
        "NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt)",
        table="new_rounds", emitter=_CHAINLINK,
    ),
    event(
        "AssetSourceUpdated(address indexed asset, address indexed source)",
        table="asset_source_updates", emitter="AaveOracle (IAaveOracle.sol)",
    ),
    event(
        "CapParametersUpdated(uint256 snapshotRatio, uint256 snapshotTimestamp,"
        " uint256 maxRatioGrowthPerSecond, uint16 maxYearlyRatioGrowthPercent)",
        table="cap_parameter_updates", emitter="capped-ratio (CAPO) price adapter",
    ),
    # PoolConfigurator: risk parameters over time
    event(
        "CollateralConfigurationChanged(address indexed asset, uint256 ltv,"
        " uint256 liquidationThreshold, uint256 liquidationBonus)",
        table="collateral_configuration_changes", emitter=_CONFIGURATOR,
    ),
    event(
        "EModeCategoryAdded(uint8 indexed categoryId, uint256 ltv, uint256 liquidationThreshold,"
        " uint256 liquidationBonus, address oracle, string label)",
        table="emode_category_additions", emitter=_CONFIGURATOR,
    ),
    event(
        "AssetCollateralInEModeChanged(address indexed asset, uint8 categoryId, bool collateral)",
        table="emode_collateral_changes", emitter=_CONFIGURATOR,
    ),
    event(
        "AssetBorrowableInEModeChanged(address indexed asset, uint8 categoryId, bool borrowable)",
        table="emode_borrowable_changes", emitter=_CONFIGURATOR,
    ),
    event(
        "LiquidationProtocolFeeChanged(address indexed asset, uint256 oldFee, uint256 newFee)",
        table="liquidation_protocol_fee_changes", emitter=_CONFIGURATOR,
    ),
    event(
        # v3.6 still declares stableDebtToken (the address is zero for new reserves).
        "ReserveInitialized(address indexed asset, address indexed aToken, address stableDebtToken,"
        " address variableDebtToken, address interestRateStrategyAddress)",
        table="reserve_initializations", emitter=_CONFIGURATOR,
    ),
)


def _index_catalogue(events: tuple[Event, ...]) -> tuple[dict[bytes, tuple[Event, ...]], dict[str, pa.Schema]]:
    """topic0 -> events, table -> schema; checks that the catalogue is consistent."""
    by_topic0: dict[bytes, list[Event]] = {}
    schemas: dict[str, pa.Schema] = {}
    for ev in events:
        same = by_topic0.setdefault(ev.topic0, [])
        # One topic0 may serve several layouts (ERC-20 vs ERC-721 Transfer) only if the
        # topic count tells them apart.
        if any(other.n_topics == ev.n_topics for other in same):
            raise ValueError(f"{ev.signature}: two catalogue layouts with the same topic0 and topic count")
        same.append(ev)
        if ev.table in schemas and not schemas[ev.table].equals(ev.schema):
            raise ValueError(f"table {ev.table!r}: events sharing it must produce the same columns")
        schemas.setdefault(ev.table, ev.schema)
    if UNDECODED_TABLE in schemas:
        raise ValueError(f"{UNDECODED_TABLE!r} is reserved for logs that could not be decoded")
    return {k: tuple(v) for k, v in by_topic0.items()}, schemas


EVENTS_BY_TOPIC0, TABLE_SCHEMAS = _index_catalogue(EVENTS)


def table_schema(table: str) -> pa.Schema:
    """Arrow schema of a decoded table (``undecoded`` included)."""
    if table == UNDECODED_TABLE:
        return UNDECODED_SCHEMA
    try:
        return TABLE_SCHEMAS[table]
    except KeyError:
        raise KeyError(f"no decoded table named {table!r}; known: {', '.join(sorted(TABLE_SCHEMAS))}") from None


def events_for_table(table: str) -> tuple[Event, ...]:
    return tuple(ev for ev in EVENTS if ev.table == table)

