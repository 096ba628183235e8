"""postmortem: reports stage — the post-mortem documents of an incident, from the warehouse.

Library entry point: ``reports.api.write_report(warehouse_root, incident_id, ...)``.

- ``model``: SQL over the warehouse -> ``ReportModel`` (every figure with the SQL that reproduces it), put
  together from ``columns`` (the column map), ``reader`` (one replay run, read), ``figures``,
  ``detail_tables``, ``reimbursement``, ``checks`` and ``provenance``; ``parts`` are its pieces
- ``policy``: reimbursement policies and the line-by-line comparison with a paid list
- ``text``: the sentences every renderer shares; ``fmt``: exact number formatting for display
- ``charts``: hand-drawn inline SVG
- ``render_md``, ``render_html``, ``render_json``, ``render_csv``: the documents
"""
