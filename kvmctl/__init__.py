"""kvmctl: the command-line client of kvmcluster. It talks to the REST API only (never the database)."""
