"""States, kinds and phases of a guest migration. The one place they are spelled out."""

from django.db import models


class State(models.TextChoices):
    """Where a MigrationJob stands. Meanings (one line each):

    PENDING     requested, a worker task is enqueued, nothing touched libvirt yet
    QUEUED      waiting for a per-host slot (MIGRATION_MAX_OUTGOING / _INCOMING); starts in request order
    RUNNING     a worker owns the job: pre-flight re-run, then libvirt's migration job
    CANCELLING  an operator asked to cancel; abort sent to libvirt, waiting for it to confirm
    SUCCEEDED   verified from libvirt: the guest lives on the target only
    FAILED      it did not happen; `error` keeps libvirt's message and `where_guest_is` says where it is
    CANCELLED   cancelled before or during the move; the guest stayed on the source
    """

    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    CANCELLING = "cancelling", "Cancelling"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# A job in one of these holds its guest (Guest.migrating) and, except QUEUED, a per-host slot.
ACTIVE_STATES = frozenset({State.PENDING, State.QUEUED, State.RUNNING, State.CANCELLING})
# States that take a per-host slot (QUEUED waits for one).
SLOT_STATES = frozenset({State.PENDING, State.RUNNING, State.CANCELLING})
# Final: nothing moves a job out of these.
TERMINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})


class Kind(models.TextChoices):
    LIVE = "live", "Live (guest keeps running)"
    OFFLINE = "offline", "Offline (guest shut off)"


class Phase(models.TextChoices):
    """Finer progress of a RUNNING job, for the operator (not part of the state machine)."""

    WAITING = "waiting", "Waiting"
    PREFLIGHT = "preflight", "Pre-flight checks"
    SHUTDOWN = "shutdown", "Shutting the guest down"
    SETUP = "setup", "Setting up the target"
    PRECOPY = "precopy", "Copying memory"
    POSTCOPY = "postcopy", "Post-copy"
    SWITCHOVER = "switchover", "Switching over"
    MOVING = "moving", "Moving the definition"
    STARTING = "starting", "Starting on the target"
    VERIFYING = "verifying", "Verifying with libvirt"
    DONE = "done", "Done"


class TimeoutAction(models.TextChoices):
    ABORT = "abort", "Abort the migration"
    POSTCOPY = "postcopy", "Switch to post-copy"


class WhereGuestIs(models.TextChoices):
    SOURCE = "source", "On the source"
    TARGET = "target", "On the target"
    BOTH = "both", "On both hosts"
    NOWHERE = "nowhere", "On neither host"
    UNKNOWN = "unknown", "Unknown (a host did not answer)"


# The Migrate form's and the API's "pick the best target for me" (services.auto_target).
AUTO_TARGET = "auto"


class OperationKind(models.TextChoices):
    DRAIN = "drain", "Drain (empty the host for maintenance)"
    BALANCE = "balance", "Balance"
    RECOVER = "recover", "Recover"
    RETURN = "return", "Return (bring the guests of a drain back)"


class OperationState(models.TextChoices):
    """Where an Operation stands. Meanings (one line each):

    RUNNING     children are being started as the plan says; the operation waits for them
    PAUSED      no new child starts; children already started run to their end
    CANCELLING  an operator cancelled: waiting children were cancelled, running ones are being cancelled
    DONE        every child ended and no guest is left on the host
    INCOMPLETE  every child ended but guests are left on the host (the reasons are stored)
    CANCELLED   cancelled; every child has ended
    """

    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    CANCELLING = "cancelling", "Cancelling"
    DONE = "done", "Done"
    INCOMPLETE = "incomplete", "Incomplete"
    CANCELLED = "cancelled", "Cancelled"


# At most one of these per hypervisor (a partial unique constraint).
OPERATION_ACTIVE_STATES = frozenset({OperationState.RUNNING, OperationState.PAUSED, OperationState.CANCELLING})
OPERATION_TERMINAL_STATES = frozenset({OperationState.DONE, OperationState.INCOMPLETE, OperationState.CANCELLED})
