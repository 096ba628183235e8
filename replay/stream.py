"""The replay's input as one stream in chain order: ``(block, transaction_index, log_index, priority)``.

Decoded logs of the followed contracts come at their own position. A ``LiquidationCall`` comes
just before its own transaction (after the logs of the earlier transactions of its block and of an
earlier ``LiquidationCall`` in the same transaction), so the state there is the one it met. The
block-end reads (``capo_states``, ``feed_answers``, ``oracle_prices``) come after a block's logs,
then the block-end marker (``start`` for ``from_block - 1``, ``block_end`` inside the window).
"""

from __future__ import annotations

from typing import Collection, Iterable

from postmortem.replay.inputs import ReplayInputs

__all__ = ["END", "event_stream"]

END = 2**40  # transaction / log index standing for "the end of the block"


def event_stream(inputs: ReplayInputs, *, tokens: Collection[str], pools: Collection[str],
                 capo_adapters: Collection[str], answer_emitters: Collection[str],
                 configurators: Collection[str], timestamps: Iterable[int]) -> list[tuple]:
    """``(sort key, kind, row)`` for every item the replay applies, in chain order.

    ``tokens`` are the a/debt tokens followed, ``pools`` the Pools, ``capo_adapters`` the capped
    adapters, ``answer_emitters`` the contracts whose ``AnswerUpdated`` moves a tracked feed,
    ``configurators`` the PoolConfigurators, ``timestamps`` every block with a header.
    """
    a, b = inputs.from_block, inputs.to_block
    items: list[tuple] = []
    ev = inputs.events

    def key(r):
        return (int(r["block_number"]), int(r["transaction_index"]), int(r["log_index"]), 0)

    for r in ev.get("token_mints", []):
        if r["address"] in tokens:
            items.append((key(r), "mint", r))
    for r in ev.get("token_burns", []):
        if r["address"] in tokens:
            items.append((key(r), "burn", r))
    for r in ev.get("balance_transfers", []):
        if r["address"] in tokens:
            items.append((key(r), "balance_transfer", r))
    pools = set(pools)
    for table, kind in (("collateral_toggles", "toggle"), ("emode_changes", "emode"),
                        ("reserve_updates", "reserve_update")):
        for r in ev.get(table, []):
            if r["address"] in pools:
                items.append((key(r), kind, r))
    for r in ev.get("cap_parameter_updates", []):
        if r["address"] in capo_adapters:
            items.append((key(r), "cap", r))
    for r in ev.get("oracle_answers", []):
        if r["address"] in answer_emitters:
            items.append((key(r), "answer", r))
    for table in ("collateral_configuration_changes", "liquidation_protocol_fee_changes",
                  "emode_category_additions", "emode_collateral_changes"):
        for r in ev.get(table, []):
            if r["address"] in configurators:
                items.append((key(r), table, r))
    # Liquidations: the checkpoint just before each (see the module docstring).
    liqs = sorted((r for r in ev.get("liquidations", []) if r["address"] in pools),
                  key=lambda r: (int(r["block_number"]), int(r["log_index"])))
    previous_in_tx: dict[tuple[int, int], int] = {}
    for r in liqs:
        bt = (int(r["block_number"]), int(r["transaction_index"]))
        after = previous_in_tx.get(bt, -1)
        previous_in_tx[bt] = int(r["log_index"])
        items.append(((bt[0], bt[1], after, 1), "liquidation", r))
    # Block-end reads, then the block-end marker.
    for r in inputs.capo_states:
        items.append(((int(r["block_number"]), END, END, 0), "snap_capo", r))
    for r in inputs.feed_answers:
        items.append(((int(r["block_number"]), END, END, 0), "snap_feed", r))
    for r in inputs.oracle_prices:
        items.append(((int(r["block_number"]), END, END, 0), "snap_oracle", r))
    for n in sorted(timestamps):
        if n == a - 1:
            items.append(((n, END, END, 1), "start", None))
        elif a <= n <= b:
            items.append(((n, END, END, 1), "block_end", n))
    items.sort(key=lambda item: item[0])
    return items
