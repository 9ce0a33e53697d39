"""bench_proc.py — what the PyTorch benchmarks (torch_bench.py,
torch_sample.py) measure about their own process and how they set it up:
peak resident memory, CPU seconds, and the OpenMP wait policy, which must be
set before torch is imported (libgomp reads it once, when it loads)."""
import os
import resource
import sys


def peak_rss_kib():
    """VmHWM of this process in KiB, or None without /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mib():
    kib = peak_rss_kib()
    return None if kib is None else kib / 1024.0


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def add_wait_policy_arg(ap):
    ap.add_argument("--wait-policy", default="PASSIVE",
                    help="OMP_WAIT_POLICY for this process: PASSIVE (default), ACTIVE, or 'default' (unset)")


def apply_wait_policy(policy, who):
    """Sets OMP_WAIT_POLICY ("default": unset); exits if torch is already
    loaded, since libgomp would not see it."""
    if policy == "default":
        os.environ.pop("OMP_WAIT_POLICY", None)
    else:
        os.environ["OMP_WAIT_POLICY"] = policy
    if "torch" in sys.modules:
        sys.exit("%s: torch was imported before the wait policy was set" % who)
