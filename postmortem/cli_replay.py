"""`postmortem replay`: re-price every position under the reported and the true price, judge
every liquidation (a thin layer over ``replay.engine.replay``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

import postmortem.replay.tables  # noqa: F401  (documents the output tables, for `postmortem schema` and the catalog)
from postmortem.cli import cli, warehouse_option


def _eth(wei) -> str:
    if wei is None:
        return "n/a"
    return f"{Decimal(int(wei)) / Decimal(10**18):,.4f} ETH"


@cli.command("replay")
@click.option("--incident", "incident_id", required=True, help="Incident id from the catalog (`postmortem incidents`).")
@warehouse_option("Warehouse folder the incident was ingested into.")
@click.option("--true-price", "true_prices", multiple=True, metavar="SYMBOL=MODEL[:PARAM]",
              help="Override the incident's true price of one asset: uncapped, reported, constant:USD, "
                   "feed:0xADDRESS or csv:PATH (repeatable), e.g. wstETH=constant:2345.67.")
@click.option("--from-block", type=click.IntRange(min=1), default=None,
              help="Start of the replayed window (default: the start of the ingested range).")
@click.option("--to-block", type=click.IntRange(min=1), default=None,
              help="End of the replayed window (default: the end of the ingested range).")
@click.option("--health-band", type=click.FloatRange(min=1.0), default=1.10, show_default=True,
              help="Positions whose health factor under either price is below this are valued exactly and "
                   "kept in the health table at every checkpoint.")
def replay_cmd(incident_id: str, warehouse: Path, true_prices: tuple[str, ...], from_block: int | None,
               to_block: int | None, health_band: float) -> None:
    """Re-price every position of an ingested incident and judge every liquidation.

    Writes the health, verdicts, borrower_losses, liquidator_gains, at_risk and price_path tables
    to the warehouse under a new run id; query them with `postmortem sql`. A compound-v2 incident
    (Compound, Moonwell, Venus) judges every liquidation and every borrow and writes
    compound_verdicts, compound_borrow_verdicts, compound_bad_debt and compound_borrowers.

    \b
    Examples:
      postmortem replay --incident devchain-wsteth-capo-2026-03-10
      postmortem replay --incident aave-v3-wsteth-capo-2026-03-10 --true-price wstETH=constant:2700
      postmortem replay --incident ID --from-block 24626900 --to-block 24627000 --health-band 1.05
      postmortem replay --incident compound-v2-dai-2020-11-26 --true-price DAI=csv:dai.csv
    """
    from postmortem.replay.engine import replay

    s = replay(warehouse, incident_id, true_price_overrides=list(true_prices), from_block=from_block,
               to_block=to_block, health_band=health_band)
    v = s["verdicts"]
    if s.get("protocol") == "compound-v2":
        b = s["borrow_verdicts"]
        click.echo(f"replayed {incident_id} blocks {s['from_block']}..{s['to_block']} (run {s['run_id']}, "
                   f"{s['variant']}): {s['events_applied']} events in {s['seconds']} s")
        click.echo(f"liquidations: {s['liquidations']}  wrongly eligible: {v['wrongly_eligible']}  "
                   f"eligible anyway: {v['eligible_anyway']}  anomalies: {v['anomaly']}")
        click.echo(f"borrows: {s['borrows']}  wrongly allowed: {b['wrongly_allowed']}  allowed: {b['allowed']}  "
                   f"anomalies: {b['anomaly']}")
        if s["replay_mismatches"]:
            click.echo(f"warning: {s['replay_mismatches']} liquidations do not replay to their logged seizeTokens",
                       err=True)
        click.echo(f'see: postmortem sql "select * from compound_verdicts" --warehouse {warehouse}')
        return
    click.echo(f"replayed {incident_id} blocks {s['from_block']}..{s['to_block']} (run {s['run_id']}): "
               f"{s['checkpoints']} checkpoints, {s['users']} users, {s['positions_valued_exactly']} exact valuations "
               f"in {s['seconds']} s")
    click.echo(f"liquidations: {s['liquidations']}  wrongly eligible: {v['wrongly_eligible']}  "
               f"eligible anyway: {v['eligible_anyway']}  anomalies: {v['anomaly']}  "
               f"at risk, not liquidated: {s['at_risk']}")
    click.echo(f"oracle loss: {_eth(s['oracle_loss_eth_wei'])}  bonus loss: {_eth(s['bonus_loss_eth_wei'])}  "
               f"owed: {_eth(s['reimbursable_eth_wei'])} (at the chain's prices)")
    if s["reported_price_mismatches"]:
        click.echo(f"warning: {s['reported_price_mismatches']} recomputed reported prices differ from the oracle "
                   f"reads (first: {s.get('first_price_mismatch')})", err=True)
    if s["replay_mismatches"]:
        click.echo(f"warning: {s['replay_mismatches']} liquidations do not replay to their logged amounts", err=True)
    click.echo(f'see: postmortem sql "select * from verdict_summary" --warehouse {warehouse}')
