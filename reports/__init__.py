"""postmortem: reports stage."""
