"""report.py DIR — the table of a bench/run.sh run.

Reads what run.sh left in DIR (one JSON object per measurement:
dal-MODEL.json, torch-MODEL-POLICY.json, sgemm.json; compile-MODEL.txt with
one wall-clock time in ms per line; machine.txt) and prints one markdown
table with the notes under it, on stdout and into DIR/results.md.

The ratio is PyTorch ms/step divided by dal ms/step: above 1 dal is faster.
PyTorch leads with its fastest setting of this run (the OpenMP wait policy,
MODELS.md section 3); the default setting is shown beside it. A measurement
that failed shows as "failed" and its log is named in the notes; one that
run.sh stopped at its time limit shows the steps it finished (from the
per-step lines of its log), or "> limit" if none finished.
Run with /usr/bin/python3 (or any Python 3: only the standard library).
"""
import json
import os
import statistics
import sys

MODELS = [("dvae", "dVAE"), ("gpt", "GPT")]
POLICIES = ["PASSIVE", "default"]


def load(path):
    """The JSON object in path; {"error": ...} if it is missing or broken."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text.splitlines()[-1]) if text else {"error": "no output"}
    except (OSError, ValueError, IndexError) as e:
        return {"error": str(e)}


def ok(m):
    return "error" not in m and isinstance(m.get("ms_median"), (int, float))


def stopped(m):
    """The time limit a measurement was stopped at (run.sh's timeout), or None."""
    return m.get("timeout_s")


def finished_steps(m, log):
    """A stopped dal measurement with the steps its log says finished: the
    timed ones, else the warm-up ones (a step that slow has nothing left to
    warm up); unchanged if none finished."""
    timed, warm = [], []
    try:
        with open(log) as f:
            for line in f:
                words = line.split()
                if len(words) == 4 and words[0] in ("step", "warm-up") and words[3] == "ms":
                    (timed if words[0] == "step" else warm).append(float(words[2]))
    except (OSError, ValueError):
        return m
    steps = timed or warm
    if not steps:
        return m
    return {"timeout_s": m["timeout_s"], "ms_median": statistics.median(steps), "steps": len(steps),
            "warmup_only": not timed}


def fmt_ms(m):
    if stopped(m) and "ms_median" in m:
        return "%.1f (stopped at %d s after %d %sstep%s)" % (
            m["ms_median"], stopped(m), m["steps"], "warm-up " if m["warmup_only"] else "",
            "" if m["steps"] == 1 else "s")
    if stopped(m):
        return "> %d (stopped)" % (stopped(m) * 1000)
    if not ok(m):
        return "failed"
    note = ""
    if m.get("cold"):
        note = " (1 cold step)"
    elif m.get("steps", 0) < 3:
        note = " (%d step%s)" % (m["steps"], "" if m["steps"] == 1 else "s")
    return "%.1f%s" % (m["ms_median"], note)


def fmt_ratio(torch_m, dal_m):
    if ok(torch_m) and stopped(dal_m) and "ms_median" not in dal_m:
        return "< %.3gx" % (torch_m["ms_median"] / (stopped(dal_m) * 1e3))
    if ok(torch_m) and stopped(dal_m):
        return "%.3gx" % (torch_m["ms_median"] / dal_m["ms_median"])
    if not ok(torch_m) or not ok(dal_m) or dal_m["ms_median"] <= 0:
        return "-"
    return "%.3gx" % (torch_m["ms_median"] / dal_m["ms_median"])


def fmt_rate(m):
    if not ok(m) or not m.get("per_s"):
        return "-"
    v = m["per_s"]
    return "%s %s/s" % ("%.0f" % v if v >= 100 else "%.3g" % v, m["unit"])


def fmt_busy(m):
    return "%.2f" % m["cores_busy"] if ok(m) and isinstance(m.get("cores_busy"), (int, float)) else "-"


def fmt_mib(m):
    if not ok(m) or m.get("peak_rss_kib") is None:
        return "-"
    return "%.0f MiB" % (m["peak_rss_kib"] / 1024.0)


def fastest(runs):
    """(policy, measurement) of the fastest PyTorch setting that ran."""
    good = [(p, m) for p, m in runs.items() if ok(m)]
    if not good:
        return POLICIES[0], runs[POLICIES[0]]
    return min(good, key=lambda pm: pm[1]["ms_median"])


def compile_line(d, config):
    """Each line of compile-MODEL.txt is "WALL_MS PASSES_MS" (PASSES_MS "-"
    when dalc has no --time-passes)."""
    parts = []
    for key, name in MODELS:
        wall, passes = [], []
        try:
            with open(os.path.join(d, "compile-%s.txt" % key)) as f:
                for line in f:
                    fields = line.split()
                    if fields:
                        wall.append(float(fields[0]))
                    if len(fields) > 1 and fields[1] != "-":
                        passes.append(float(fields[1]))
        except (OSError, ValueError):
            wall = []
        if not wall:
            parts.append("%s.dal failed" % key)
        elif passes:
            parts.append("%s.dal %.0f ms (process %.2f s)" % (key, statistics.median(passes),
                                                              statistics.median(wall) / 1e3))
        else:
            parts.append("%s.dal %.2f s (process)" % (key, statistics.median(wall) / 1e3))
    return ("- dal compile time, source to runnable program (`dalc run FILE --config %s --time-passes -- info`: "
            "the phases' total, and the wall clock of the whole process, which adds start-up and the state's "
            "initialisation; medians): %s" % (config, ", ".join(parts)))


def sgemm_line(d):
    s = load(os.path.join(d, "sgemm.json"))
    if "error" in s:
        return "- OpenBLAS sgemm: failed (%s)" % s["error"]
    parts = ["%s %s: %.1f GFLOP/s (best %.1f)" % (g["name"], "%dx%dx%d" % (g["m"], g["n"], g["k"]),
                                                  g["gflops_median"], g["gflops_best"]) for g in s["gemms"]]
    return "- OpenBLAS sgemm, %d threads (%s): %s" % (s["threads"], s.get("core", "?"), "; ".join(parts))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py DIR")
    d = sys.argv[1]
    machine = {}
    try:
        with open(os.path.join(d, "machine.txt")) as f:
            for line in f:
                key, _, value = line.partition("=")
                machine[key.strip()] = value.strip()
    except OSError:
        pass
    config = machine.get("config", "bench")

    head = ("| model (%s) | dal ms/step | PyTorch ms/step, fastest setting | ratio PyTorch/dal | "
            "PyTorch ms/step, OMP default | ratio PyTorch/dal | dal throughput | PyTorch throughput | "
            "dal peak RSS | PyTorch peak RSS |" % config)
    lines = [head, "|" + "---|" * head.count(" |")]
    failures = []  # and measurements stopped at the time limit
    busy = []
    torch_version = "?"
    for key, name in MODELS:
        dal = load(os.path.join(d, "dal-%s.json" % key))
        if stopped(dal):
            dal = finished_steps(dal, os.path.join(d, "dal-%s.log" % key))
        runs = {p: load(os.path.join(d, "torch-%s-%s.json" % (key, p))) for p in POLICIES}
        policy, best = fastest(runs)
        if "torch" in best:
            torch_version = "%s (AdamW %s)" % (best["torch"], best.get("adamw", "?"))
        busy.append("%s dal %s, PyTorch %s" % (name, fmt_busy(dal), fmt_busy(best)))
        default = runs["default"]
        for label, m, log in [("dal", dal, "dal-%s.log" % key)] + [
                ("PyTorch %s" % p, runs[p], "torch-%s-%s.log" % (key, p)) for p in POLICIES]:
            if stopped(m):
                failures.append("%s %s: stopped at the %d s limit (DAL_BENCH_TIMEOUT)%s" % (
                    name, label, stopped(m), "" if "ms_median" in m else ", before its first step finished"))
            elif not ok(m):
                failures.append("%s %s failed: see %s" % (name, label, os.path.join(d, log)))
        lines.append("| %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt_ms(dal), fmt_ms(best), "OMP_WAIT_POLICY=PASSIVE" if policy == "PASSIVE" else "OMP default",
            fmt_ratio(best, dal), fmt_ms(default), fmt_ratio(default, dal), fmt_rate(dal), fmt_rate(best),
            fmt_mib(dal), fmt_mib(best)))

    notes = [
        "",
        "- ratio = PyTorch ms/step / dal ms/step: above 1 dal is faster. One training step (forward, backward, "
        "AdamW), batch %s; medians of the timed steps; 2 threads; throughput at the median (tokens: B x (Lt + g*g) "
        "input tokens per step)." % ("16" if config == "bench" else "of the config"),
        "- peak RSS: VmHWM of a fresh process per measurement (dal's includes the compiler; PyTorch's the "
        "Python interpreter and torch).",
        "- cores busy (process CPU time / wall time over the timed steps, fastest PyTorch setting): %s."
        % "; ".join(busy),
        compile_line(d, config),
        sgemm_line(d),
        "- machine: %s, %s cores, load average %s at the start; PyTorch %s; dal at %s%s" % (
            machine.get("cpu", "?"), machine.get("cores", "?"), machine.get("load", "?"), torch_version,
            machine.get("commit", "?"),
            " (dalc %s)" % machine["dalc_flags"] if machine.get("dalc_flags") else ""),
    ]
    notes += ["- %s" % f for f in failures]
    text = "\n".join(lines + notes) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write(text)
    return 1 if any("failed" in f for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
