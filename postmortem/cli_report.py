"""`postmortem report`: the post-mortem documents of one incident, from the warehouse."""

from __future__ import annotations

from pathlib import Path

import click

from postmortem.cli import cli, warehouse_option


@cli.command("report")
@click.option("--incident", "incident_id", required=True, metavar="ID",
              help="Incident id, as given to `postmortem replay` (e.g. devchain-wsteth-capo-2026-03-10).")
@warehouse_option("Warehouse folder to read.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the documents [default: data/reports/ID/].")
@click.option("--format", "formats", default="md,html,json,csv", show_default=True, metavar="LIST",
              help="Comma-separated formats: md, html, json, csv (the reimbursement list).")
@click.option("--run-id", default=None, help="Replay run to report on [default: the latest for the incident].")
@click.option("--rate-gap", default=None, metavar="ETH",
              help="Policy: ETH per unit of the mispriced collateral (e.g. 0.034902118 ETH per wstETH) "
                   "instead of the chain's oracle loss.")
@click.option("--bonus-bps", default=None, metavar="N",
              help="Policy: bonus basis in bps of the debt repaid (e.g. 100) instead of the chain's bonus loss.")
@click.option("--goodwill-eth", default=None, metavar="ETH", help="Policy: a fixed amount added for every borrower.")
@click.option("--scope", type=click.Choice(["reimbursable", "wrongly-eligible", "window"]), default="reimbursable",
              show_default=True,
              help="Which liquidations count: reimbursable (the replay's rule: oracle loss of every liquidation, bonus "
                   "of the wrongly eligible ones), wrongly-eligible (those only), or window (every liquidation of the "
                   "mispriced collateral while it was mispriced).")
@click.option("--compare-paid", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.csv",
              help="A paid list (columns user, amount_eth) to compare with the reimbursement list, line by line.")
@click.option("--tolerance-eth", default=None, metavar="ETH",
              help="With --compare-paid: differences up to this amount count as a match [default: 0].")
@click.option("--whatif", "whatif_runs", multiple=True, metavar="RUN",
              help="Add a what-if run (`postmortem whatif` prints its id) to the report (repeatable).")
@click.option("--policy", "policy_name", type=click.Choice(["compound-forum", "moonwell", "venus-fee"]), default=None,
              help="Compound v2 lineage incidents: the payout policy, shown with its formula in the report: "
                   "compound-forum (wrongly eligible: seized - repaid at the true price; eligible anyway: the "
                   "incentive difference), moonwell (seized x a fixed price - debt repaid, net per borrower), "
                   "venus-fee (the liquidation fee refunded inside --policy-window) [default: the incident's].")
@click.option("--policy-price", multiple=True, metavar="SYMBOL=USD",
              help="With --policy moonwell: the fixed price of a seized collateral (e.g. cbETH=2200) [default: the "
                   "incident's constant true price].")
@click.option("--policy-window", default=None, metavar="START..END",
              help="With --policy venus-fee: the UTC window of the liquidations refunded (e.g. "
                   "2025-10-10T21:43..2025-10-10T23:30) [default: the whole replay].")
def report_cmd(incident_id: str, warehouse: Path, out_dir: Path | None, formats: str, run_id: str | None,
               rate_gap: str | None, bonus_bps: str | None, goodwill_eth: str | None, scope: str,
               compare_paid: Path | None, tolerance_eth: str | None, whatif_runs: tuple[str, ...],
               policy_name: str | None, policy_price: tuple[str, ...], policy_window: str | None) -> None:
    """Write the post-mortem of INCIDENT: Markdown, one-file HTML with charts, JSON, reimbursement CSV.

    Every figure carries the SQL that reproduces it. By default borrowers are owed what the
    chain's own prices say (oracle loss + bonus loss); --rate-gap, --bonus-bps and --goodwill-eth
    state a policy the way a DAO does, so a published payout can be reproduced and checked with
    --compare-paid.

    \b
    Examples:
      postmortem report --incident devchain-wsteth-capo-2026-03-10
      postmortem report --incident ID --out /tmp/report --format html,csv
      postmortem report --incident aave-v3-wsteth-capo-2026-03-10 --rate-gap 0.034902118 \\
          --bonus-bps 100 --compare-paid paid.csv
      postmortem report --incident ID --whatif 893e65656258ae65   # with a what-if run's counterfactuals
      postmortem report --incident moonwell-cbeth-2026-02-15 --policy moonwell --policy-price cbETH=2200
      postmortem report --incident compound-v2-dai-2020-11-26 --policy compound-forum
    """
    from postmortem.incidents import incident_protocol

    if incident_protocol(incident_id) == "compound-v2":
        from postmortem.reports.compound import CompoundPolicy, write_compound_report

        aave_only = [name for name, given in (("--rate-gap", rate_gap), ("--bonus-bps", bonus_bps),
                                              ("--goodwill-eth", goodwill_eth), ("--compare-paid", compare_paid),
                                              ("--tolerance-eth", tolerance_eth), ("--run-id", run_id),
                                              ("--scope", scope != "reimbursable"), ("--whatif", whatif_runs)) if given]
        if aave_only:
            raise click.UsageError(f"{', '.join(aave_only)} {'apply' if len(aave_only) > 1 else 'applies'} to Aave v3 "
                                   f"incidents; for {incident_id} use --policy, "
                                   "--policy-price and --policy-window")

        fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
        model, paths = write_compound_report(warehouse, incident_id, out_dir, fmts,
                                             CompoundPolicy.from_options(policy_name, policy_price, policy_window)
                                             if policy_name or policy_price or policy_window else None)
        for sentence in model.headline():
            click.echo(sentence)
        for key, path in paths.items():
            click.echo(f"{key}: {path}")
        return
    if policy_name or policy_price or policy_window:
        raise click.UsageError("--policy, --policy-price and --policy-window apply to compound-v2 incidents; for "
                               "this one use --rate-gap, --bonus-bps and --goodwill-eth")
    from postmortem.reports import fmt, text
    from postmortem.reports.api import build_and_write, parse_formats
    from postmortem.reports.policy import eth_to_wei, Policy

    fmts = parse_formats(formats)  # a bad list fails before any work
    policy = Policy.from_options(rate_gap, bonus_bps, goodwill_eth, scope)
    tolerance = eth_to_wei(tolerance_eth, "the tolerance") if tolerance_eth else 0
    if tolerance and compare_paid is None:
        raise click.UsageError("--tolerance-eth applies to --compare-paid only")
    model, paths = build_and_write(warehouse, incident_id, out_dir, fmts, policy, compare_paid,
                                   run_id=run_id, tolerance_wei=tolerance, whatif_runs=whatif_runs)
    for sentence in text.headline(model):
        click.echo(sentence)
    if model.comparison is not None:
        c = model.comparison.to_json()
        k = c["counts"]
        click.echo(f"Paid list {model.comparison.source}: {k['match']} match, {k['underpaid']} underpaid, "
                   f"{k['overpaid']} overpaid, {k['not_paid']} not paid, {k['not_owed']} not owed; "
                   f"paid − owed = {fmt.eth(model.comparison.difference_total_wei, 6)}.")
    failed = [c for c in model.checks if c.ok is False]
    for c in failed:
        click.echo(f"Check failed: {c.title}: {c.detail}", err=True)
    for key, path in paths.items():
        click.echo(f"{key}: {path}")
