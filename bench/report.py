"""report.py DIR — the table of a bench/run.sh run.

Reads what run.sh left in DIR (one JSON object per measurement:
dal-MODEL.json, torch-MODEL-POLICY.json, sgemm.json; compile-MODEL.txt with
one wall-clock time in ms per line; machine.txt; for sampling
dal-sample-CACHE.json and torch-sample-CACHE-POLICY.json, CACHE = cache or
nocache) and prints two markdown tables (training steps, sampling) with the
notes under them, on stdout and into DIR/results.md.

The ratio is PyTorch ms/step divided by dal ms/step (sampling: dal image
tokens/s divided by PyTorch's): above 1 dal is faster.
PyTorch leads with its fastest setting of this run (the OpenMP wait policy,
MODELS.md section 3); the default setting is shown beside it. A measurement
that failed shows as "failed" and its log is named in the notes; one that
run.sh stopped at its time limit shows the steps it finished (from the
per-step lines of its log), or "> limit" if none finished. A dal sampling
measurement whose dalc has no `sample --bench` yet (its log says the option
is unknown) shows "n/a" and is no failure.
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


# ---- sampling --------------------------------------------------------------------

SAMPLE_MODES = [("cache", "KV cache"), ("nocache", "no cache")]


def sample_ok(m):
    return "error" not in m and isinstance(m.get("tokens_per_s"), (int, float)) and m["tokens_per_s"] > 0


def sample_missing(log):
    """Whether a dal sampling log says this dalc lacks `sample --bench`."""
    try:
        with open(log) as f:
            text = f.read()
    except OSError:
        return False
    return "unknown option" in text or "unknown command" in text


def fmt_tps(m):
    """"1234 (0.415 s)": image tokens/s and the seconds of one generation."""
    if not sample_ok(m):
        return None
    v = m["tokens_per_s"]
    rate = "%.0f" % v if v >= 100 else "%.3g" % v
    return "%s (%.3g s)" % (rate, m["seconds"]) if isinstance(m.get("seconds"), (int, float)) else rate


def fmt_sample_ratio(dal_m, torch_m):
    if not sample_ok(dal_m) or not sample_ok(torch_m):
        return "-"
    return "%.3gx" % (dal_m["tokens_per_s"] / torch_m["tokens_per_s"])


def fmt_sample_mib(m):
    if not sample_ok(m) or not isinstance(m.get("peak_rss_mib"), (int, float)):
        return "-"
    return "%.0f MiB" % m["peak_rss_mib"]


def sample_settings(d, key):
    """The PyTorch settings measured for sampling mode 'key': PASSIVE and
    default always (missing ones show as failed), then any other
    torch-sample-KEY-SETTING.json (SETTING = POLICY-blasN)."""
    prefix, found = "torch-sample-%s-" % key, []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        names = []
    for name in names:
        if name.startswith(prefix) and name.endswith(".json"):
            setting = name[len(prefix):-len(".json")]
            if setting not in POLICIES:
                found.append(setting)
    return POLICIES + found


def setting_label(setting):
    """"PASSIVE-blas1" -> "OMP_WAIT_POLICY=PASSIVE, OPENBLAS_NUM_THREADS=1"."""
    policy, _, blas = setting.partition("-blas")
    label = "OMP_WAIT_POLICY=PASSIVE" if policy == "PASSIVE" else "OMP default" if policy == "default" else \
        "OMP_WAIT_POLICY=%s" % policy
    return label + (", OPENBLAS_NUM_THREADS=%s" % blas if blas else "")


def sample_table(d, config):
    """The sampling rows, their notes and their failures: ([lines], [notes], [failures])."""
    lines, notes, failures = [], [], []
    shape = "batch 8, 32 text + 64 image tokens" if config == "bench" else "batch 8"
    head = ("| GPT sampling (%s; %s) | dal image tokens/s | PyTorch image tokens/s, fastest setting | "
            "ratio dal/PyTorch | PyTorch image tokens/s, OMP default | ratio dal/PyTorch | dal peak RSS | "
            "PyTorch peak RSS |" % (config, shape))
    lines += [head, "|" + "---|" * head.count(" |")]
    for key, name in SAMPLE_MODES:
        dal_log = os.path.join(d, "dal-sample-%s.log" % key)
        dal = load(os.path.join(d, "dal-sample-%s.json" % key))
        runs = {p: load(os.path.join(d, "torch-sample-%s-%s.json" % (key, p))) for p in sample_settings(d, key)}
        good = [(p, m) for p, m in runs.items() if sample_ok(m)]
        policy, best = max(good, key=lambda pm: pm[1]["tokens_per_s"]) if good else (POLICIES[0], runs[POLICIES[0]])
        if sample_ok(dal):
            dal_cell = fmt_tps(dal)
        elif stopped(dal):
            dal_cell = "> %d s (stopped)" % stopped(dal)
            failures.append("GPT sampling (%s) dal: stopped at the %d s limit (DAL_BENCH_TIMEOUT)" % (name, stopped(dal)))
        elif sample_missing(dal_log):
            dal_cell = "n/a"
            notes.append("- GPT sampling (%s) dal: n/a, this dalc has no `sample --bench` (see %s)" % (name, dal_log))
        else:
            dal_cell = "failed"
            failures.append("GPT sampling (%s) dal failed: see %s" % (name, dal_log))
        for p in runs:
            if not sample_ok(runs[p]):
                failures.append("GPT sampling (%s) PyTorch %s failed: see %s" % (
                    name, p, os.path.join(d, "torch-sample-%s-%s.log" % (key, p))))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, dal_cell,
            "%s (%s)" % (fmt_tps(best), setting_label(policy)) if sample_ok(best) else "failed",
            fmt_sample_ratio(dal, best), fmt_tps(runs["default"]) or "failed", fmt_sample_ratio(dal, runs["default"]),
            fmt_sample_mib(dal), fmt_sample_mib(best)))
    notes.insert(0, "- GPT sampling: image tokens generated per second (batch x g*g over the wall time of one whole "
                 "generation, the median of PyTorch's timed ones), each token by Gumbel-max at T = 1 from random "
                 "weights and text ids; KV cache: the text once, then one position at a time; no cache: the whole "
                 "sequence so far at every position. ratio = dal tokens/s / PyTorch tokens/s: above 1 dal is faster. "
                 "PyTorch's fastest of its settings (%s) leads; peak RSS: VmHWM of a fresh process per "
                 "measurement." % "; ".join(sorted({setting_label(p) for k, _ in SAMPLE_MODES
                                                     for p in sample_settings(d, k)})))
    return lines, notes, failures


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
    s_lines, s_notes, s_failures = sample_table(d, config)
    s_notes += ["- %s" % f for f in s_failures]
    failures += s_failures
    text = "\n".join(lines + notes + [""] + s_lines + [""] + s_notes) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write(text)
    return 1 if any("failed" in f for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
