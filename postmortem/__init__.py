"""postmortem: replay historical DeFi lending incidents."""

__version__ = "0.1.0"
