"""The report model: every figure of a post-mortem, built from SQL over the warehouse.

``build_model(warehouse_root, incident_id)`` reads the replay's output tables of one run
(``verdicts`` first; ``price_path``, ``liquidator_gains``, ``at_risk``, ``borrower_losses`` when
present) and the ingest tables used for decimals, checks and provenance (``reserves``,
``markets``, ``liquidations``, the manifest and run records), and returns a ``ReportModel``.
Renderers (``render_md``, ``render_html``, ``render_json``, ``render_csv``) only format it.
Every figure is a :class:`~reports.parts.Figure` holding the exact SQL that produced it, with the
incident, run and chain written into it as literals, so the same text run through ``postmortem
sql`` returns the same rows. Amounts stay Python ints in their raw unit (token base units, wei,
base currency units of 1e8 per USD, wads) until a renderer displays them.

The parts live in one module each: :mod:`reports.columns` (the column map), :mod:`reports.reader`
(the run, read), :mod:`reports.figures`, :mod:`reports.detail_tables`,
:mod:`reports.reimbursement`, :mod:`reports.checks` and :mod:`reports.provenance`; this module
puts them together. Their public names are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postmortem.errors import PostmortemError
from postmortem.reports import policy as pol
from postmortem.reports.checks import run_checks
from postmortem.reports.columns import COLUMNS, REQUIRED, Columns, ident, literal
from postmortem.reports.detail_tables import at_risk_table, liquidations_table, liquidators_table, price_path_table
from postmortem.reports.figures import add_figures, add_headline, find_eth_asset, find_mispriced
from postmortem.reports.parts import (
    GROUP_FIGURES,
    GROUP_HEADLINE,
    VERDICT_ANOMALY,
    VERDICT_ANYWAY,
    VERDICT_WRONG,
    VERDICTS,
    Check,
    Figure,
    Table,
    ppm,
)
from postmortem.reports.policy import Comparison, PaidList, Policy
from postmortem.reports.provenance import Provenance, build_provenance, flatten, input_digest, methodology
from postmortem.reports.reader import RunReader
from postmortem.reports.borrowers import borrowers_table
from postmortem.reports.reimbursement import Reimbursement, build_reimbursement
from postmortem.reports.whatif_section import read_whatif_runs

__all__ = ["COLUMNS", "GROUP_FIGURES", "GROUP_HEADLINE", "REQUIRED", "VERDICTS", "VERDICT_ANOMALY", "VERDICT_ANYWAY",
           "VERDICT_WRONG", "Check", "Columns", "Figure", "Provenance", "Reimbursement", "ReportModel", "Table",
           "build_model", "flatten", "ident", "input_digest", "literal", "ppm"]


@dataclass
class ReportModel:
    incident_id: str
    title: str | None  # from the incident catalog, when it has the incident
    chain_id: int
    run_id: str
    figures: dict[str, Figure]
    liquidations: Table
    liquidators: Table
    at_risk: Table
    price_path: Table
    reimbursement: Reimbursement
    comparison: Comparison | None
    checks: list[Check]
    provenance: Provenance
    methodology: dict
    mispriced: dict | None  # asset, symbol, decimals, pool
    eth_asset: str | None
    notes: list[str] = field(default_factory=list)
    borrowers: Table | None = None  # each liquidated borrower's case (reports.borrowers)
    whatif: list[dict] = field(default_factory=list)  # what-if runs added with --whatif (reports.whatif_section)

    def figure(self, key: str) -> Figure | None:
        return self.figures.get(key)

    def value(self, key: str, default: Any = None) -> Any:
        f = self.figures.get(key)
        return default if f is None or f.value is None else f.value

    def quantities(self) -> dict[str, int | None]:
        """Every named quantity of the glossary that is one number, by its report.json key (exact ints).

        The headline, the figure cards, the tables, report.json and reimbursements.csv all take their
        numbers from here or from the rows these sum, so one concept has one number.
        """
        ol = self.value("oracle_loss") or {}
        bl = self.value("bonus_loss") or {}
        lg = self.value("liquidator_gains") or {}
        ep = self.value("eth_price") or {}
        t = self.reimbursement.totals()
        price = ep.get("eth_price")
        return {
            "oracle_loss_wei": ol.get("eth_wei"),
            "oracle_loss_fee_part_wei": ol.get("fee_part_eth_wei"),
            "bonus_loss_wei": bl.get("eth_wei"),
            "owed_wei": t["total_wei"],
            "owed_oracle_part_wei": t["oracle_loss_wei"],
            "owed_oracle_fee_part_wei": t["fee_oracle_loss_wei"],
            "owed_bonus_part_wei": t["bonus_loss_wei"],
            "owed_goodwill_wei": t["goodwill_wei"],
            "owed_borrowers": t["borrowers"],
            "eth_price_base": price,
            "eth_price_block": ep.get("block_number"),
            "owed_usd_base": None if not price else t["total_wei"] * int(price) // 10**18,
            "liquidator_gain_wei": lg.get("eth_wei"),
        }

    @property
    def wrongly_eligible(self) -> list[dict]:
        return [r for r in self.liquidations.rows if r["verdict"] == VERDICT_WRONG]

    def symbol(self, asset: str | None) -> str:
        if self.mispriced and asset == self.mispriced["asset"] and self.mispriced.get("symbol"):
            return self.mispriced["symbol"]
        for r in self.liquidations.rows:
            if r.get("collateral_asset") == asset and r.get("collateral_symbol"):
                return r["collateral_symbol"]
            if r.get("debt_asset") == asset and r.get("debt_symbol"):
                return r["debt_symbol"]
        return asset or "?"

    def divergence_ppm(self) -> int | None:
        """Reported vs true collateral price at the first wrongly eligible liquidation, in ppm.

        ``(reported - true) / true``, rounded half away from zero; negative = priced low.
        """
        row = self.value("price_at_first_wrong_liquidation")
        if not row or not row.get("collateral_price_true"):
            return None
        return ppm(row["collateral_price_reported"], row["collateral_price_true"])


def build_model(warehouse_root: Path | str, incident_id: str, *, run_id: str | None = None,
                policy: Policy | None = None, compare_paid: PaidList | Path | str | None = None,
                tolerance_wei: int = 0, whatif_runs: tuple[str, ...] | list[str] = ()) -> ReportModel:
    """Read the warehouse and build the report model of ``incident_id``.

    ``run_id`` picks a replay run (default: the most recently written ``verdicts`` of the
    incident). ``policy`` values the reimbursements (default: the chain's prices, the replay's
    reimbursable rule). ``compare_paid`` is a paid list (``PaidList`` or the path of a
    ``user,amount_eth`` CSV) compared line by line. ``whatif_runs`` adds those what-if runs.
    """
    policy = policy or Policy()
    if compare_paid is not None and not isinstance(compare_paid, PaidList):
        compare_paid = pol.read_paid_csv(compare_paid)
    reader = RunReader(Path(warehouse_root), incident_id, run_id)
    try:
        model = _build(reader, policy, compare_paid, tolerance_wei)
        model.whatif = read_whatif_runs(reader, list(whatif_runs))
        return model
    finally:
        reader.close()


def _build(rd: RunReader, policy: Policy, paid: PaidList | None, tolerance_wei: int) -> ReportModel:
    figures: dict[str, Figure] = {}
    liquidations = liquidations_table(rd)
    mispriced = find_mispriced(rd, figures, liquidations)
    eth_asset = find_eth_asset(liquidations)
    add_headline(rd, figures, mispriced)
    add_figures(rd, figures)
    provenance = build_provenance(rd, figures)
    block_range = tuple(provenance.block_range[k] for k in ("first_block", "last_block", "source"))
    reimbursement = build_reimbursement(rd, policy, figures, mispriced, eth_asset)
    comparison = pol.compare(reimbursement.owed(), paid, tolerance_wei) if paid is not None else None
    return ReportModel(
        incident_id=rd.incident_id, title=_incident_title(rd.incident_id), chain_id=rd.chain_id,
        run_id=rd.run_id, figures=figures, liquidations=liquidations, liquidators=liquidators_table(rd),
        at_risk=at_risk_table(rd), price_path=price_path_table(rd, mispriced), reimbursement=reimbursement,
        comparison=comparison, checks=run_checks(rd, figures, reimbursement, liquidations.rows, block_range),
        provenance=provenance, methodology=methodology(rd), mispriced=mispriced,
        eth_asset=eth_asset, notes=rd.notes, borrowers=borrowers_table(rd, liquidations, reimbursement),
    )


def _incident_title(incident_id: str) -> str | None:
    """The title in the incident catalog (data/incidents/ID.toml), if the catalog has the incident."""
    from postmortem.incidents import incident_file

    try:
        title = incident_file(incident_id)[0].get("title")
    except PostmortemError:
        return None
    return title if isinstance(title, str) and title.strip() else None
