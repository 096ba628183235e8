"""The former name of :mod:`replay.output_tables` (the replay's output tables and views, with their
documentation); ``postmortem.replay.tables`` keeps working for code and tests that import it."""

from postmortem.replay.output_tables import (  # noqa: F401  (re-exported)
    DEC,
    DEC_MAX,
    TABLES,
    UNIT_COLL,
    UNIT_ETH_WEI,
    UNIT_PRICE,
    VIEW_DOCS,
    VIEWS,
    to_arrow,
)
