"""`LabHandle`: what the pytest fixture (and benchmarks, demos) get: the running lab's facts and helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import guests, security, service
from .config import GUESTS, HOSTS, NFS_ADDRESS, HostSpec, Paths, paths
from .procs import LabError, alive, load_state


@dataclass
class LabHandle:
    """The lab as tests see it. `started` says whether this handle's owner brought it up (and so must
    take it down); a lab that was already running is reused and left running."""

    paths: Paths = field(default_factory=paths)
    started: bool = False
    up_seconds: float = 0.0

    def __post_init__(self) -> None:
        # Whoever holds a handle talks to the lab's libvirtd, which wants the lab's SASL credentials.
        security.use_credentials(self.paths)

    # ------------------------------------------------------------------------------------ facts
    @property
    def hosts(self) -> tuple[HostSpec, ...]:
        return HOSTS

    @property
    def uris(self) -> dict[str, str]:
        """host name -> libvirt URI, e.g. {"hv-a": "qemu+tcp://127.0.55.2/system", ...}"""
        return {h.name: h.uri for h in HOSTS}

    @property
    def guests(self) -> dict[str, str]:
        """guest name -> its *initial* host name (ask `current_host` for where it is now)."""
        return {g.name: g.host for g in GUESTS}

    @property
    def guest_uuids(self) -> dict[str, str]:
        return {g.name: guests.uuid_of(g.name) for g in GUESTS}

    @property
    def running_guests(self) -> list[str]:
        """Guests the lab keeps running (lab-gcache stays shut off)."""
        return [g.name for g in GUESTS if g.start]

    @property
    def storage(self) -> dict[str, str]:
        return {
            "name": "lab-nfs",
            "address": NFS_ADDRESS,
            "export_path": str(self.paths.export),
            "mount_path": str(self.paths.export),
            "protocol": "nfs",
        }

    def uri(self, host_name: str) -> str:
        return self.uris[host_name]

    def revive(self) -> dict[str, str]:
        """Start again any lab daemon found dead (`lab up`, which reuses what runs). Returns, for each
        host whose libvirtd had died, the end of its logs as it left them: a test that finds one dead
        says so instead of failing on "connection refused" for a cause it does not show."""
        hosts = load_state(self.paths).get("hosts", {})
        logs = {h.name: _log_tail(self.paths, h.name) for h in HOSTS if not alive(hosts.get(h.name))}
        if not service.is_up(self.paths):  # the lab's own record, by PID: no libvirt call while all is well
            service.up(wait=True, p=self.paths)
        return logs

    def other_host(self, host_name: str) -> str:
        return next(h.name for h in HOSTS if h.name != host_name)

    # ----------------------------------------------------------------------- libvirt's truth
    def placement(self) -> dict[str, dict[str, str]]:
        return guests.placement()

    def running_on(self, guest_name: str) -> list[str]:
        return guests.running_on(guest_name)

    def current_host(self, guest_name: str) -> str | None:
        return guests.current_host(guest_name)

    # -------------------------------------------------------------------------- heartbeats
    def heartbeat(self, guest_name: str) -> int | None:
        return guests.heartbeat(guest_name, p=self.paths)

    def beats(self, guest_name: str, after_offset: int = 0) -> list[int]:
        """Every heartbeat on the console after `after_offset`, in order (one writer: each the last + 1)."""
        return guests.beats(guest_name, after_offset=after_offset, p=self.paths)

    def wait_heartbeat(self, guest_name: str, above: int = 0, timeout: float = 60, after_offset: int = 0) -> int:
        """Wait for a heartbeat > `above`, counting only log bytes after `after_offset` (see console_offset)."""
        return guests.wait_heartbeat(guest_name, above=above, timeout=timeout, after_offset=after_offset, p=self.paths)

    def disk_heartbeat(self, guest_name: str) -> int | None:
        return guests.disk_heartbeat(guest_name, p=self.paths)

    def console_log(self, guest_name: str) -> str:
        return str(self.paths.console_log(guest_name))

    def console_offset(self, guest_name: str) -> int:
        """Current size of the serial log: pass it as `after_offset` to read only what comes next."""
        return guests.console_size(self.paths, guest_name)

    def console_text(self, guest_name: str, after_offset: int = 0) -> str:
        with open(self.paths.console_log(guest_name), "rb") as f:
            f.seek(after_offset)
            return f.read().decode(errors="replace")

    def assert_kept_running(self, guest_name: str, since_offset: int, beats: int = 5, timeout: float = 30) -> int:
        """The guest neither crashed nor rebooted since `since_offset` (console_offset before the move)
        and its heartbeat rises `beats` more times. A live move that corrupts the guest's memory shows
        as a kernel panic and a reboot a second or two after it "succeeded", or as a heartbeat that
        stops: counting a couple of beats right after the move would miss both."""
        last = self.heartbeat(guest_name) or 0
        try:
            hb = self.wait_heartbeat(guest_name, above=last + beats, timeout=timeout, after_offset=since_offset)
        except LabError as err:
            console = self.console_text(guest_name, since_offset)[-1500:]
            raise LabError(f"{err}; console since the move:\n{console}") from err
        text = self.console_text(guest_name, since_offset)
        for sign in ("Kernel panic", "GUEST-BOOTED"):
            if sign in text:
                raise LabError(f"{guest_name}: {sign!r} on its console since the move:\n{text[-1500:]}")
        return hb

    # ---------------------------------------------------------------------------- actions
    def set_workload(self, guest_name: str, fill: int, dirty: int, wait: bool = True, burn: int = 0) -> str:
        """Reboot the guest (where it is) with fill/dirty MiB and `burn` busy loops; returns its host name."""
        return guests.set_workload(guest_name, fill, dirty, p=self.paths, wait=wait, burn=burn)

    def reset(self) -> None:
        """Every guest back on its initial host with its default workload."""
        service.reset(p=self.paths)

    def register(self) -> dict:
        """Write lab-nfs, hv-a and hv-b into the current database (call inside a django_db test)."""
        from .registry import register

        return register()


def _log_tail(p: Paths, host_name: str, chars: int = 1500) -> str:
    out = []
    for log in ("stdout.log", "libvirtd.log"):
        try:
            text = (p.host_dir(host_name) / "log" / log).read_text(errors="replace")
        except OSError as exc:
            text = f"({exc.strerror})"
        out.append(f"--- {log}\n{text[-chars:]}")
    return "\n".join(out)
