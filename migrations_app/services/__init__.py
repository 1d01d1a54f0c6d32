"""Every change to a guest migration goes through one function here (Zulip's do_<verb>, HackSoft's services).

Invariants kept by the package:
- a job's state moves only by `transition()` (transitions.py): a compare-and-set on the expected old
  states, along state_machine.TRANSITIONS; zero rows updated means someone else moved it -> TransitionConflict;
- Guest.migrating is set in the transaction that creates an active job and cleared in the one that
  makes it terminal; Guest.hypervisor changes only in a SUCCEEDED transition, on libvirt's word (both
  through hosts.services.placement: migrations_app never writes a Guest row itself);
- each operator action writes its audit row in the same transaction, and pushes/enqueues on commit.

    errors       MigrationError, PreflightFailed, TransitionConflict
    options      the options of a request, normalized
    audit        who may act; the audit fields of a move
    transitions  the compare-and-set step, its timeline event and its push
    admission    per-host slots, request order, handing jobs to the worker
    requests     migration_request: pre-flight, the job, its audit row
    controls     cancel, bandwidth, post-copy

`from migrations_app import services` then `services.migration_request(...)` keeps working: the public
names are re-exported here.
"""

from migrations_app.services.errors import MigrationError, PreflightFailed, TransitionConflict  # isort: skip
from migrations_app.services.transitions import record_event, transition  # isort: skip
from migrations_app.services.admission import ADMISSION_LOCK_KEY, admit_queued, enqueue
from migrations_app.services.audit import audit_fields, job_audit_fields
from migrations_app.services.controls import migration_cancel, migration_set_bandwidth, migration_switch_postcopy
from migrations_app.services.options import OPTION_DEFAULTS, normalize_options
from migrations_app.services.requests import migration_request

__all__ = [
    "ADMISSION_LOCK_KEY",
    "OPTION_DEFAULTS",
    "MigrationError",
    "PreflightFailed",
    "TransitionConflict",
    "admit_queued",
    "audit_fields",
    "enqueue",
    "job_audit_fields",
    "migration_cancel",
    "migration_request",
    "migration_set_bandwidth",
    "migration_switch_postcopy",
    "normalize_options",
    "record_event",
    "transition",
]
