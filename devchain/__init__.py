"""postmortem: devchain stage."""
