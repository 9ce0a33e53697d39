"""measure.py — runs one benchmark process and records how busy the rest of
the machine was meanwhile (bench/run.sh wraps every measurement in it).

    /usr/bin/python3 bench/measure.py --load FILE [--timeout S] -- COMMAND ARGS...

COMMAND inherits stdin, stdout and stderr. FILE gets one JSON object:
  wall_s            the command's wall time
  self_cpu_s        its CPU time (user + system, its waited-for children included)
  machine_cpu_s     CPU time all processes spent meanwhile (/proc/stat: user,
                    nice, system, irq, softirq, steal; not idle or iowait)
  others_cores      (machine_cpu_s - self_cpu_s) / wall_s: the cores the other
                    processes kept busy on average (0 on a quiet machine)
  loadavg_before, loadavg_after   the 1-minute load average
  cores             os.cpu_count()
  timed_out         whether --timeout stopped it
The exit status is the command's; 124 if --timeout S (S > 0) stopped it (SIGTERM,
then SIGKILL 5 s later, to its whole process group).
Only the standard library.
"""
import json
import os
import signal
import subprocess
import sys
import time


def machine_busy_s():
    """Busy CPU seconds of all cores since boot, from /proc/stat's cpu line."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    # (guest time is already counted in user)
    ticks = [int(v) for v in fields[1:9]]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit("usage: measure.py --load FILE [--timeout S] -- COMMAND ARGS...")
    cut = argv.index("--")
    opts, cmd = argv[:cut], argv[cut + 1:]
    load_file, timeout = None, 0.0
    i = 0
    while i < len(opts):
        if opts[i] == "--load" and i + 1 < len(opts):
            load_file = opts[i + 1]
        elif opts[i] == "--timeout" and i + 1 < len(opts):
            timeout = float(opts[i + 1])
        else:
            sys.exit("measure.py: unknown argument '%s'" % opts[i])
        i += 2
    if not load_file or not cmd:
        sys.exit("usage: measure.py --load FILE [--timeout S] -- COMMAND ARGS...")

    before = {"load": loadavg(), "busy": machine_busy_s(), "wall": time.monotonic()}
    try:
        proc = subprocess.Popen(cmd, start_new_session=True)
    except OSError as e:
        sys.exit("measure.py: cannot run %s: %s" % (cmd[0], e))
    timed_out = False
    status = None
    rusage = None
    while status is None:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, rusage = st, ru
            break
        if timeout > 0 and time.monotonic() - before["wall"] > timeout and not timed_out:
            timed_out = True
            os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    status, rusage = st, ru
                    break
                time.sleep(0.05)
            if status is None:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.monotonic() - before["wall"]
    machine = machine_busy_s() - before["busy"]
    self_cpu = rusage.ru_utime + rusage.ru_stime
    record = {
        "wall_s": round(wall, 3), "self_cpu_s": round(self_cpu, 3), "machine_cpu_s": round(machine, 3),
        "others_cores": round(max(0.0, machine - self_cpu) / wall, 3) if wall > 0 else None,
        "loadavg_before": before["load"], "loadavg_after": loadavg(), "cores": os.cpu_count(),
        "timed_out": timed_out,
    }
    with open(load_file, "w") as f:
        f.write(json.dumps(record) + "\n")
    if timed_out:
        return 124
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else (status >> 8)


if __name__ == "__main__":
    sys.exit(main())
