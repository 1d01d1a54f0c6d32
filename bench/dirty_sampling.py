"""What libvirt's page sampling reads for a guest rewriting a known buffer, over periods of 1 and 2 s.

    .venv/bin/python bench/dirty_sampling.py [--dirty 8,24,40] [--readings 6] [--periods 1,2] [--jitter 0]

Needs the lab. For each --dirty value a throwaway diskless guest (lab-gsample, the lab's definition,
--fill MiB written once, DIRTY MiB rewritten by `dd` then `sleep 1`, lab/image.py) boots on hv-a; the
readings alternate the --periods (after a random pause of up to --jitter s, so that their cadence cannot
lock onto the guest's loop) (the one mode ever used: page sampling, through the driver). The
guest's own heartbeats (one per loop, stamped with its uptime) give its loop's length, so its real average
rate is DIRTY / loop. One line per guest, then the last line:
    dirty_sampling <dirty>:loop=<s>,p<period>=<mean>,... ...
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lab_guests import throwaway_guests  # noqa: E402

GUEST = "lab-gsample"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dirty", default="8,24,40")
    ap.add_argument("--readings", type=int, default=6, help="readings per period")
    ap.add_argument("--fill", type=int, default=32)
    ap.add_argument("--periods", default="1,2", help="periods (s), alternated")
    ap.add_argument("--jitter", type=float, default=0.0, help="a random pause of up to this many s before each")
    args = ap.parse_args()
    os.environ["KVMCLUSTER_DATA_DIR"] = tempfile.mkdtemp(prefix="kvmcluster-bench-sampling-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmcluster.settings")
    import django

    django.setup()
    from hosts.drivers import libvirt as driver
    from lab import config
    from lab import guests as lab_guests
    from lab.handle import LabHandle

    LabHandle()  # the lab's SASL login for this process
    uri = config.host("hv-a").uri
    p = config.paths()

    def reading(uuid: str, period: int) -> float:
        driver.start_dirty_rate_calc(uri, uuid, period)
        time.sleep(period + 0.3)
        for _ in range(50):
            last = driver.dirty_rate(uri, uuid)
            if last.status == "measured" and last.mib_per_s is not None:
                return last.mib_per_s
            time.sleep(0.1)
        raise SystemExit("no measurement")

    summary = []
    for dirty in [int(x) for x in args.dirty.split(",")]:
        with throwaway_guests([GUEST], "hv-a", fill=args.fill, dirty=dirty, disk=False):
            uuid = lab_guests.uuid_of(GUEST)
            mark = lab_guests.console_size(p, GUEST)
            periods = [int(x) for x in args.periods.split(",")]
            rates: dict[int, list[float]] = {period: [] for period in periods}
            for _ in range(args.readings):
                for period in periods:
                    time.sleep(random.uniform(0, args.jitter))  # no phase lock with the guest's loop
                    rates[period].append(reading(uuid, period))
            with open(p.console_log(GUEST), "rb") as f:
                f.seek(mark)
                ups = [float(u) for u in re.findall(rb"HB \d+ up=([0-9.]+)", f.read())]
            loop = (ups[-1] - ups[0]) / (len(ups) - 1) if len(ups) > 1 else float("nan")
            said = "; ".join(
                f"{period} s: {rs} median {statistics.median(rs):g} mean {statistics.mean(rs):.1f}"
                for period, rs in rates.items()
            )
            print(
                f"dirty {dirty}: loop {loop:.2f} s ({len(ups)} beats), real {dirty / loop:.1f} MiB/s; "
                f"{said}; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            means = ",".join(f"p{period}={statistics.mean(rs):.1f}" for period, rs in rates.items())
            summary.append(f"{dirty}:loop={loop:.2f},{means}")
    print("dirty_sampling " + " ".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
