"""postmortem: ingest stage."""
