"""Signals other apps may listen to; migrations_app imports none of its listeners (dependencies point one way).

`job_state_changed` is sent inside the transaction that writes the change, so a listener's own writes
commit or roll back with it. Keyword arguments: `job` (the MigrationJob as stored), `state` (its new
state) and `created` (True for a new request, False for a transition). Sent with send_robust: a
failing listener is logged and never fails the guest migration.
"""

from django.dispatch import Signal

job_state_changed = Signal()

# Sent by a failed host's recovery (services.recovery) for each guest it tried to restart elsewhere, in
# the transaction of its audit row: `guest` (name), `source`, `target` (host names; target "" when none
# could take it), `started` (bool) and `message` (what happened, or why it was not started).
ha_restart_done = Signal()
