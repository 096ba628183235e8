"""`postmortem whatif`, `postmortem stress`, `postmortem explain`: counterfactuals, market shocks
and one borrower's case over an ingested incident (thin layers over ``postmortem.pipeline`` and
``replay.whatif_api``)."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import click

from postmortem.cli import cli, warehouse_option

_WAD = Decimal(10**18)


def _eth(wei) -> str:
    return "n/a" if wei is None else f"{Decimal(int(wei)) / _WAD:,.4f} ETH"


def _usd(base) -> str:
    return "n/a" if base is None else f"{Decimal(int(base)) / Decimal(10**8):,.2f} USD"


def _hf(wad) -> str:
    return "inf" if wad is None or int(wad) >= 10**20 else f"{Decimal(int(wad)) / _WAD:.4f}"


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total:
        click.echo(f"\r  {done}/{total} points", err=True, nl=done == total)


@cli.command("whatif")
@click.option("--incident", "incident_id", required=True, metavar="ID", help="An ingested incident (`postmortem incidents`).")
@warehouse_option("Warehouse folder the incident was ingested into.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="A counterfactual (repeatable): reported_price=true, price_shift=PCT, SYMBOL.price_shift=PCT, "
                   "oracle_delay=N, SYMBOL.snapshot_ratio=R, SYMBOL.snapshot_timestamp=T, SYMBOL.max_yearly_growth=PCT, "
                   "[MARKET.]SYMBOL.liquidation_threshold=PCT, [MARKET.]SYMBOL.liquidation_bonus=PCT, "
                   "[MARKET.]SYMBOL.protocol_fee=PCT, [MARKET.]emode.N.liquidation_threshold=PCT, "
                   "[MARKET.]emode.N.liquidation_bonus=PCT, close_factor=PCT.")
@click.option("--sweep", default=None, metavar="KEY=START:STOP:STEPS",
              help="Run a grid of STEPS values of KEY from START to STOP (with the --set values as the base); writes "
                   "curve.csv, curve.json and curve.svg and gives the boundary.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for a sweep's curve [default: data/reports/ID/whatif-RUN/].")
@click.option("--workers", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="Processes a sweep of 100 points or more is split over (helps only on idle cores: on a busy "
                   "2-core machine one process was faster).")
def whatif_cmd(incident_id: str, warehouse: Path, settings: tuple[str, ...], sweep: str | None, out_dir: Path | None,
               workers: int) -> None:
    """Judge the incident's window again under counterfactual prices or risk parameters.

    Each LiquidationCall is judged on the state the chain had just before it: would it have
    happened, was it wrongly eligible, and with the same debtToCover what it would take; plus the
    borrowers that become liquidatable and the bad debt at the end. Results go to the warehouse
    tables whatif_runs and whatif_results (`postmortem schema whatif_runs`); point 0 is the window
    as it happened.

    \b
    Examples:
      postmortem whatif --incident devchain-wsteth-capo-2026-03-10 --set reported_price=true
      postmortem whatif --incident ID --set wstETH.snapshot_ratio=1.2268
      postmortem whatif --incident ID --set oracle_delay=2 --set wstETH.price_shift=-1%
      postmortem whatif --incident ID --set core.emode.1.liquidation_threshold=96% --set close_factor=100%
      postmortem whatif --incident ID --sweep wstETH.snapshot_ratio=1.18:1.24:1000
      postmortem whatif --incident ID --sweep oracle_delay=0:10:11
      postmortem report --incident ID --whatif RUN        # add a run to the report
    """
    from postmortem.pipeline import run_whatif

    r = run_whatif(warehouse, incident_id, settings=settings, sweep=sweep, out_dir=out_dir, workers=workers,
                   progress=_progress if sweep else None)
    a = r["actual"]
    click.echo(f"what-if run {r['run_id']} of {incident_id} (against replay run {r['replay_run_id']})")
    click.echo(f"  as it happened: {a['would_liquidate']} of {a['liquidations']} liquidations, "
               f"{a['wrongly_eligible']} wrongly eligible, {a['liquidatable_positions']} borrowers liquidatable, "
               f"oracle loss {_eth(a['oracle_loss_eth_wei'])}, bad debt {_usd(a['bad_debt_base'])}")
    if r.get("counterfactual"):
        c = r["counterfactual"]
        click.echo(f"  with {r['runs'][-1]['settings']}: {c['would_liquidate']} would happen, {c['prevented']} would not, "
                   f"{c['wrongly_eligible']} wrongly eligible, {c['liquidatable_positions']} borrowers liquidatable "
                   f"({c['liquidatable_not_liquidated']} never liquidated), collateral seized "
                   f"{_usd(c['collateral_seized_base'])}, oracle loss {_eth(c['oracle_loss_eth_wei'])}, bonus loss "
                   f"{_eth(c['bonus_loss_eth_wei'])}, bad debt {_usd(c['bad_debt_base'])}")
    if r.get("sweep_key"):
        click.echo(f"  sweep of {r['sweep_key']}: {r['points']} points")
        b = r.get("boundary") or {}
        if b.get("snapshot_ratio_text"):
            click.echo(f"  boundary: {b['meaning']} is {b['snapshot_ratio_text']} "
                       f"(just below it the cap binds at block {b['capped_below_at_block']})")
        elif b.get("value_text") is not None:
            click.echo(f"  boundary: {b['meaning']}: {b['value_text']}")
        else:
            click.echo("  boundary: none in this grid (its first point already changes the result)")
        click.echo(f"  curve: {r['curve']['csv']}, {r['curve']['svg']}")
    click.echo(f'see: postmortem sql "select * from whatif_runs_all_runs where run_id = \'{r["run_id"]}\'" '
               f"--warehouse {warehouse}")


@cli.command("stress")
@click.option("--incident", "incident_id", required=True, metavar="ID", help="An ingested incident.")
@warehouse_option("Warehouse folder the incident was ingested into.")
@click.option("--at", "at", type=int, default=None, metavar="BLOCK",
              help="Value the positions at the end of this block [default: the window's start state, FROM-1].")
@click.option("--shock", "shocks", multiple=True, metavar="ASSET=PCT",
              help="Move an asset's price (reported and market), e.g. wstETH=-30% (repeatable).")
@click.option("--preset", type=click.Choice(["flash-crash-20", "flash-crash-30"]), default=None,
              help="Shock every asset that is not a stablecoin (price not within 5% of 1 USD) by 20% or 30%.")
@click.option("--oracle-delay", type=int, default=0, show_default=True, metavar="N",
              help="Blocks before the oracle reports the shock: until then the protocol sees the old prices.")
def stress_cmd(incident_id: str, warehouse: Path, at: int | None, shocks: tuple[str, ...], preset: str | None,
               oracle_delay: int) -> None:
    """Value every borrower of the incident's markets at one block under shocked prices.

    Reports the borrowers that become liquidatable, what one liquidationCall could take from each
    (close-factor rules applied once), and the bad debt, by market and by asset. Rows go to the
    warehouse table stress_results.

    \b
    Examples:
      postmortem stress --incident devchain-wsteth-capo-2026-03-10 --shock wstETH=-30%
      postmortem stress --incident ID --preset flash-crash-20 --oracle-delay 3
      postmortem stress --incident ID --at 510 --shock WETH=-25% --shock wstETH=-25%
    """
    from postmortem.replay.whatif_api import stress_run

    r = stress_run(warehouse, incident_id, at=at, shocks=list(shocks), preset=preset, oracle_delay=oracle_delay)
    t = r["totals"]
    where = f"block {r['block_number']}" + (f" (the last with a header at or before {r['requested_block']})"
                                            if r["block_number"] != r["requested_block"] else "")
    click.echo(f"stress run {r['run_id']} of {incident_id} at {where}: {r['shocks']}, oracle delay {oracle_delay}")
    lag = (f"; at the block, with the oracle {oracle_delay} blocks behind: {t['liquidatable_now']}"
           if oracle_delay else "")
    click.echo(f"  borrowers: {t['positions']}; liquidatable under the shock {t['liquidatable']} (before it "
               f"{t['liquidatable_before']}{lag}); borrowers liquidated in the incident: {r['liquidated_in_window']}")
    click.echo(f"  one liquidationCall each could take {_usd(t['collateral_seized_base'])} of collateral for "
               f"{_usd(t['debt_repaid_base'])} of debt; bad debt {_usd(t['bad_debt_base'])}")
    for m in r["by_market"]:
        click.echo(f"  market {m['market']}: {m['liquidatable']} of {m['positions']} liquidatable, seizable "
                   f"{_usd(m['collateral_seized_base'])}, bad debt {_usd(m['bad_debt_base'])}")
    for g in r["by_asset"]:
        click.echo(f"  {g['market']} {g['collateral_symbol']} collateral / {g['debt_symbol']} debt: "
                   f"{g['liquidatable']} liquidatable, seizable {_usd(g['collateral_seized_base'])}")
    click.echo(f'see: postmortem sql "select * from stress_results_all_runs where run_id = \'{r["run_id"]}\'" '
               f"--warehouse {warehouse}")


@cli.command("explain")
@click.option("--incident", "incident_id", required=True, metavar="ID", help="An ingested and replayed incident.")
@click.option("--user", required=True, metavar="ADDRESS", help="The borrower's address.")
@warehouse_option("Warehouse folder the incident was ingested into.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Text for reading, JSON with every exact integer.")
def explain_cmd(incident_id: str, user: str, warehouse: Path, fmt: str) -> None:
    """Tell one borrower's story: positions, health factor through the window under both prices,
    the price at which they would have been liquidated, each liquidation and its verdict, what they
    lost and what they are owed under each reimbursement scope.

    \b
    Examples:
      postmortem explain --incident devchain-wsteth-capo-2026-03-10 --user 0xABC...
      postmortem explain --incident ID --user 0xABC... --format json > story.json
    """
    import json

    from postmortem.pipeline import run_explain

    s = run_explain(warehouse, incident_id, user)
    if fmt == "json":
        click.echo(json.dumps(s, indent=1, default=str, sort_keys=True))
        return
    click.echo(f"borrower {s['user']} in {incident_id}, blocks {s['from_block']}..{s['to_block']}")
    click.echo("positions at the start:")
    for p in s["positions"]:
        unit = Decimal(10) ** p["decimals"]
        click.echo(f"  {p['market']} {p['symbol']}: collateral {Decimal(p['collateral']) / unit:,.6f}"
                   f"{' (used)' if p['used_as_collateral'] else ''}, debt {Decimal(p['debt']) / unit:,.6f}, "
                   f"eMode {p['emode_category']}")
    click.echo("health factor (reported / true) and the collateral price below which it is liquidatable "
               "(checkpoints with the same figures shown once):")
    shown = None
    for h in s["health"]:
        lp = h["liquidation_price"]
        figures = (f"{_hf(h['hf_reported'])} / {_hf(h['hf_true'])}  {h['collateral_symbol']}: reported "
                   f"{_usd(h['collateral_price_reported'])}, true {_usd(h['collateral_price_true'])}, liquidatable below "
                   f"{_usd(lp) if lp else 'n/a'}")
        if figures == shown and not h["liquidated_here"]:
            continue
        shown = figures
        click.echo(f"  block {h['block_number']} {h['checkpoint_kind']:<12} {figures}"
                   f"{'  <- liquidated here' if h['liquidated_here'] else ''}")
    click.echo("liquidations:")
    decimals = {p["symbol"]: p["decimals"] for p in s["positions"]}

    def tokens(amount, symbol) -> str:
        return f"{Decimal(int(amount)) / Decimal(10) ** decimals.get(symbol, 18):,.6f} {symbol}"

    for v in s["liquidations"]:
        click.echo(f"  block {v['block_number']} log {v['log_index']}: {v['verdict']} (HF {_hf(v['hf_reported'])} / "
                   f"{_hf(v['hf_true'])}), repaid {tokens(v['debt_to_cover'], v['debt_symbol'])}, took "
                   f"{tokens(v['collateral_seized'], v['collateral_symbol'])}; oracle loss "
                   f"{_eth(v['oracle_loss_eth_wei'])}, bonus loss {_eth(v['bonus_loss_eth_wei'])}")
    lost = s["lost"]
    click.echo(f"lost: {_eth(lost['borrower_loss_eth_wei'])} (oracle loss {_eth(lost['oracle_loss_eth_wei'])} + "
               f"{_eth(lost['fee_oracle_loss_eth_wei'])} on the protocol fee, bonus {_eth(lost['bonus_loss_eth_wei'])})")
    click.echo("owed, at the chain's prices:")
    for scope, o in s["owed"].items():
        if "error" in o:
            click.echo(f"  {scope}: not applicable ({o['error']})")
        else:
            click.echo(f"  {scope}: {_eth(o['owed_wei'])} (oracle part {_eth(o['oracle_part_wei'])}, bonus part "
                       f"{_eth(o['bonus_part_wei'])})")
