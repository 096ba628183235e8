"""postmortem: replay stage."""
