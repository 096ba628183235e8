"""Property test: a malformed eth_getLogs answer is a clear error naming the log, never a row.

Starting from valid logs, hypothesis changes one field of one log in a way the JSON-RPC spec
does not allow (missing, wrong type, not hex, wrong width, too many topics, removed by a reorg).
``raw_logs_from_rpc`` must raise ``DecodeError`` whose message names that log's position and its
block, or (for mutations that keep the log valid, like upper-case hex) return exactly the same
rows as the unmutated answer.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postmortem.ingest.decode import raw_logs_from_rpc
from postmortem.ingest.events import DecodeError

FIELDS = ["blockNumber", "blockHash", "transactionHash", "transactionIndex", "logIndex", "address", "topics", "data"]


def _log(i: int) -> dict:
    return {
        "blockNumber": hex(100 + i // 3), "blockHash": "0x" + f"{i:02x}" * 32,
        "transactionHash": "0x" + f"{i + 7:02x}" * 32, "transactionIndex": hex(i % 3), "logIndex": hex(i),
        "address": "0x" + f"{i + 1:02x}" * 20, "topics": ["0x" + f"{i + 2:02x}" * 32] * (i % 5),
        "data": "0x" + "00" * (32 * (i % 3)), "removed": False,
    }


BAD_VALUES = st.sampled_from([None, 7, 1.5, [], {}, "", "0x", "xyz", "0xzz", "0x123", "0x" + "1" * 63, True])


@st.composite
def mutation(draw):
    n = draw(st.integers(1, 8))
    logs = [_log(i) for i in range(n)]
    i = draw(st.integers(0, n - 1))
    field = draw(st.sampled_from(FIELDS + ["topics-extra", "topics-width", "removed"]))
    bad = copy.deepcopy(logs)
    if field == "topics-extra":
        bad[i]["topics"] = ["0x" + "ab" * 32] * 5
    elif field == "topics-width":
        bad[i]["topics"] = ["0x" + "ab" * 31]
    elif field == "removed":
        bad[i]["removed"] = True
    elif draw(st.booleans()):
        del bad[i][field]
    else:
        bad[i][field] = draw(BAD_VALUES)
    value = bad[i].get(field, "<missing>") if field in FIELDS else field
    return logs, bad, i, field, value


# Values the spec allows for that field (a different but valid log): accepted as they are.
SPEC_VALID = {("blockNumber", "0x123"), ("transactionIndex", "0x123"), ("logIndex", "0x123"),
              ("topics", "[]"), ("data", "'0x'")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation())
def test_malformed_answer_is_an_error_naming_the_log(case):
    logs, bad, i, field, value = case
    good = raw_logs_from_rpc(logs)
    try:
        got = raw_logs_from_rpc(bad)
    except DecodeError as exc:
        msg = str(exc)
        assert f"#{i}" in msg and "\n" not in msg
        return
    # Accepted: the mutation must have kept the log valid under the spec.
    key = (field, value if field in ("blockNumber", "transactionIndex", "logIndex") else repr(value))
    assert got.equals(good) or key in SPEC_VALID, (field, value)
    assert got.num_rows == len(bad)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.data())
def test_upper_case_hex_is_the_same_log(n, data):
    logs = [_log(i) for i in range(n)]
    i = data.draw(st.integers(0, n - 1))
    bad = copy.deepcopy(logs)
    bad[i]["blockHash"] = "0x" + bad[i]["blockHash"][2:].upper()
    assert raw_logs_from_rpc(bad).equals(raw_logs_from_rpc(logs))
