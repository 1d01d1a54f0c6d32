"""What the pages say about a guest migration, decided once (pure: reads a job's fields, no queries
beyond the source and target the callers have already selected).

- `move_percent`: the one percentage shown outside the job page, in the active-migrations banner and
  in the guest's row and chip in the topology. migrations_app.events computes both pushes from the same
  in-memory job at the same moment, so the two can no longer show two numbers (13 % vs 16 % was seen
  when the banner was pushed 1/s and the row 4/s).
- `phase_line`, `eta_text`, `stall_note`: the job page's progress card. An ended job says how it ended
  (failed, rolled back, cancelled...) instead of the bookkeeping phase "Done" and "ETA done", and the
  "not converging" warning is shown only while it can be true.
"""

from __future__ import annotations

from migrations_app.choices import Kind, Phase, State, WhereGuestIs

# States in which libvirt's move is under way and samples arrive.
_MOVING = (State.RUNNING, State.CANCELLING)


def move_percent(job) -> int | None:
    """Percent of a live move's memory sent, or None where there is no honest figure: an offline move
    sends no memory, a live one has no total before its first pass, and a waiting or ended job none."""
    if job.kind != Kind.LIVE or job.state not in _MOVING or not job.data_total:
        return None
    return job.percent


def phase_line(job) -> str:
    """The line under the state badge: the phase while the job is active, how it ended once it has."""
    if not job.is_terminal:
        line = job.get_phase_display()
        return f"{line} (memory pass {job.iteration})" if job.iteration else line
    src, dst = job.source.name, job.target.name
    if job.state == State.SUCCEEDED:
        return f"Done: the guest is on {dst}"
    if job.state == State.CANCELLED:
        return f"Cancelled: the guest stayed on {src}"
    where = job.where_guest_is
    if where == WhereGuestIs.SOURCE:
        return f"Failed and rolled back: the guest stayed on {src}"
    if where == WhereGuestIs.TARGET:
        return f"Failed: the guest is on {dst}, but the move could not be verified"
    if where == WhereGuestIs.BOTH:
        return f"Failed: the guest is defined or running on both {src} and {dst}"
    if where == WhereGuestIs.NOWHERE:
        return f"Failed: the guest is on neither {src} nor {dst}"
    return "Failed: where the guest is is unknown (a host did not answer)"


def eta_text(job) -> str | None:
    """The ETA figure, or None when the card shows no ETA at all (an ended job has nothing left)."""
    if job.is_terminal:
        return None
    if stall_note(job) == "now":
        return "none while the move does not converge"
    if job.eta_s is not None:
        return f"about {job.eta_s} s"
    return "–"


def stall_note(job) -> str | None:
    """'now' while a running pre-copy is stalled (see migrations_app.convergence), 'ended' for a failed or
    cancelled move that was stalled when it stopped, None otherwise; never for a move that succeeded."""
    if not job.remaining_grew:
        return None
    if job.state == State.RUNNING and job.phase == Phase.PRECOPY:
        return "now"
    if job.state in (State.FAILED, State.CANCELLED):
        return "ended"
    return None


def move_mark(job) -> dict:
    """A finished move as its guest's load chart marks it: `text` for the list beside the chart, `label`
    for the line drawn on it, `at` (Unix seconds) where the line goes."""
    route = f"{job.source.name} → {job.target.name}"
    if job.state == State.SUCCEEDED:
        text, label = f"Moved {route}", route
    else:
        how = "cancelled" if job.state == State.CANCELLED else "failed"
        text, label = f"Move {route} {how}", f"{route} ({how})"
    return {"at": job.finished_at.timestamp(), "finished_at": job.finished_at, "text": text, "label": label,
            "url": job.get_absolute_url(), "state": job.state}  # fmt: skip
