"""The Compound-v2-lineage test world: a Venus isolated-pools market on anvil, its scenario
runner and the protocol as judge (see ``devchain/compound/deploy.py``)."""
