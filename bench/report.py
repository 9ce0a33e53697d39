"""report.py DIR — the tables of a bench/run.sh run.

Reads what run.sh left in DIR and prints, on stdout and into DIR/results.md:
  1. the steps: dVAE and GPT training steps and the dVAE forward (`tokens`
     at the forward config), dal against PyTorch;
  2. GPT sampling, with and without a KV cache;
  3. compile time per model and config, cold and cached;
  4. the roof (OpenBLAS sgemm, the FMA peak) and each step's GFLOP/s;
  5. the other processes' load during every measurement;
  6. issue 11's target table: now, target, met?
Inputs: DIR/roundR/NAME.json (one JSON object per measurement and round:
dal-dvae, dal-gpt, dal-forward, torch-{dvae,gpt,forward}-POLICY,
dal-sample-CACHE, torch-sample-CACHE-SETTING, CACHE = cache or nocache),
NAME.log (its stderr) and NAME.load (bench/measure.py); DIR/compile-M-C.txt
("WALL_MS PASSES_MS" per run, the first cold); sgemm.json, fma.json,
flops.json (bench/flops.py); machine.txt.

Every figure is the median over the rounds of each round's median, with the
min-max over the rounds in brackets. A ratio (above 1: dal faster; PyTorch
ms / dal ms, dal tokens/s / PyTorch tokens/s) is the ratio of the two
medians; its bracket is the min-max of the rounds' own ratios (dal and
PyTorch of the same round, measured back to back). PyTorch leads with its
fastest setting (lowest median), MODELS.md section 3. A row is flagged
"LOADED" when, during any of its measurements, the other processes kept
more than the machine.txt threshold of cores busy. A measurement that
failed shows as "failed" with its log named; one that run.sh stopped at its
time limit shows the steps it finished (from its log), or "> limit".
Exit status 1 if anything failed. Run with any Python 3 (standard library only).
"""
import json
import os
import statistics
import sys

POLICIES = ["PASSIVE", "default"]
SAMPLE_MODES = [("cache", "KV cache"), ("nocache", "no cache")]


# ---- reading ------------------------------------------------------------------

def load(path):
    """The last JSON object in path; {"error": ...} if it is missing or broken."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text.splitlines()[-1]) if text else {"error": "no output"}
    except (OSError, ValueError, IndexError) as e:
        return {"error": str(e)}


def round_dirs(d):
    names = [n for n in os.listdir(d) if n.startswith("round") and n[5:].isdigit()] if os.path.isdir(d) else []
    return [os.path.join(d, n) for n in sorted(names, key=lambda n: int(n[5:]))]


def finished_steps(m, log):
    """A measurement stopped at the time limit, with the median of the steps
    its log says finished (the timed ones, else the warm-up ones)."""
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
    return dict(m, ms_median=statistics.median(steps), steps=len(steps), warmup_only=not timed)


class Series:
    """One measurement (NAME) over the rounds: its per-round JSON, logs and
    loads; a round without NAME.json did not measure it ("absent": run.sh
    measures some figures in the first rounds only)."""

    def __init__(self, d, name):
        self.name, self.runs = name, []
        for rd in round_dirs(d):
            path = os.path.join(rd, name + ".json")
            if not os.path.exists(path):
                self.runs.append({"m": {"error": "not measured"}, "log": None, "load": None, "absent": True})
                continue
            m = load(path)
            log = os.path.join(rd, name + ".log")
            if m.get("timeout_s"):
                m = finished_steps(m, log)
            load_rec = load(os.path.join(rd, name + ".load"))
            self.runs.append({"m": m, "log": log, "load": load_rec if "error" not in load_rec else None,
                              "absent": False})

    def measured(self):
        return [r for r in self.runs if not r["absent"]]

    def values(self, key):
        """Per round: m[key] if it is a number, None otherwise (a failed
        round; a stopped one has the median of the steps it finished)."""
        out = []
        for r in self.runs:
            m, v = r["m"], r["m"].get(key)
            usable = "error" not in m or m.get("timeout_s")
            out.append(v if usable and isinstance(v, (int, float)) and not isinstance(v, bool) else None)
        return out

    def stopped(self):
        return any(r["m"].get("timeout_s") for r in self.runs)

    def limit(self):
        return max([r["m"]["timeout_s"] for r in self.runs if r["m"].get("timeout_s")] or [0])

    def failed_logs(self, key):
        return [r["log"] for r, v in zip(self.runs, self.values(key))
                if v is None and not r["absent"] and not r["m"].get("timeout_s")]

    def others(self):
        """The most cores the other processes kept busy during any round."""
        v = [r["load"]["others_cores"] for r in self.runs if r["load"] and r["load"].get("others_cores") is not None]
        return max(v) if v else None


def spread(values):
    """(median, min, max) of the numbers in values, or None."""
    v = [x for x in values if x is not None]
    return (statistics.median(v), min(v), max(v)) if v else None


def fmt_num(x):
    return "%.0f" % x if abs(x) >= 100 else "%.3g" % x


def fmt_spread(s, unit=""):
    if s is None:
        return None
    med, lo, hi = s
    if lo == hi:
        return "%s%s" % (fmt_num(med), unit)
    return "%s%s (%s-%s)" % (fmt_num(med), unit, fmt_num(lo), fmt_num(hi))


def ratio(num, den):
    """Per round num/den, the ratio of the medians and the rounds' range:
    (median ratio, min, max) or None."""
    sn, sd = spread(num), spread(den)
    if not sn or not sd or sd[0] <= 0:
        return None
    per = [a / b for a, b in zip(num, den) if a is not None and b is not None and b > 0]
    if not per:
        return None
    return sn[0] / sd[0], min(per), max(per)


def fmt_ratio(r):
    if r is None:
        return "-"
    med, lo, hi = r
    return "%.3gx (%.3g-%.3g)" % (med, lo, hi)


class Context:
    def __init__(self, d):
        self.d = d
        self.machine = {}
        try:
            with open(os.path.join(d, "machine.txt")) as f:
                for line in f:
                    key, _, value = line.partition("=")
                    self.machine[key.strip()] = value.strip()
        except OSError:
            pass
        self.config = self.machine.get("config", "bench")
        self.fwd_config = self.machine.get("forward_config", "paper")
        try:
            self.loaded = float(self.machine.get("loaded", "0.25"))
        except ValueError:
            self.loaded = 0.25
        self.failures = []
        self.flops = load(os.path.join(d, "flops.json"))
        self.sgemm = load(os.path.join(d, "sgemm.json"))
        self.fma = load(os.path.join(d, "fma.json"))
        self.series = []  # every Series read, for the load table

    def get(self, name):
        s = Series(self.d, name)
        if not s.measured() and not any(x.name == name for x in self.series):
            self.failures.append("%s failed: no %s.json in any round" % (name, name))
        self.series.append(s)
        return s

    def flagged(self, *series):
        v = [s.others() for s in series if s.others() is not None]
        return bool(v) and max(v) > self.loaded

    def fmt_load(self, *series):
        v = [s.others() for s in series if s.others() is not None]
        if not v:
            return "-"
        return "%.2f%s" % (max(v), " LOADED" if max(v) > self.loaded else "")

    def sgemm_gflops(self):
        if "error" in self.sgemm or not self.sgemm.get("gemms"):
            return None
        return self.sgemm["gemms"][0]["gflops_median"]

    def peak_gflops(self):
        if "error" in self.fma:
            return None
        return max(self.fma.get("gflops_measured") or 0, self.fma.get("gflops_nominal") or 0) or None

    def fmt_gflops(self, key, ms):
        """"90 (64% sgemm, 58% peak)": FLOPs of flops.json[key] at ms per step."""
        f = self.flops.get(key) if "error" not in self.flops else None
        if not f or ms is None or ms <= 0:
            return "-"
        g = f["flops"] / (ms * 1e-3) * 1e-9
        parts = []
        if self.sgemm_gflops():
            parts.append("%.0f%% sgemm" % (100 * g / self.sgemm_gflops()))
        if self.peak_gflops():
            parts.append("%.0f%% peak" % (100 * g / self.peak_gflops()))
        return "%s%s" % (fmt_num(g), " (%s)" % ", ".join(parts) if parts else "")


# ---- 1. the steps ---------------------------------------------------------------

def fastest(ctx, prefix, key="ms_median", low=True):
    """(setting, Series) of the fastest PyTorch setting among prefix-SETTING."""
    runs = [(p, ctx.get("%s-%s" % (prefix, p))) for p in POLICIES]
    good = [(p, s) for p, s in runs if spread(s.values(key))]
    if not good:
        return runs[0]
    pick = min if low else max
    return pick(good, key=lambda ps: spread(ps[1].values(key))[0])


def policy_label(p):
    return "OMP_WAIT_POLICY=PASSIVE" if p == "PASSIVE" else "OMP default" if p == "default" else p


def fmt_dal_ms(ctx, dal, label):
    s = spread(dal.values("ms_median"))
    if dal.stopped():
        if s is None:
            ctx.failures.append("%s dal: stopped at the %d s limit (DAL_BENCH_TIMEOUT) before its first step "
                                "finished" % (label, dal.limit()))
            return "> %d (stopped)" % (dal.limit() * 1000)
        ctx.failures.append("%s dal: stopped at the %d s limit (DAL_BENCH_TIMEOUT) in some round; its figure is "
                            "the steps that finished" % (label, dal.limit()))
        return "%s (stopped at %d s)" % (fmt_spread(s), dal.limit())
    for log in dal.failed_logs("ms_median"):
        ctx.failures.append("%s dal failed: see %s" % (label, log))
    return fmt_spread(s) or "failed"


def step_rows(ctx):
    """The steps table; returns (lines, figures for the target table)."""
    c, fc = ctx.config, ctx.fwd_config
    rows = [("dvae", "dVAE training step (%s)" % c, "dal-dvae", "torch-dvae", "dvae_train"),
            ("gpt", "GPT training step (%s)" % c, "dal-gpt", "torch-gpt", "gpt_train"),
            ("forward", "dVAE forward, `tokens` (%s)" % fc, "dal-forward", "torch-forward", "dvae_forward")]
    head = ("| step | dal ms | PyTorch ms, fastest setting | ratio PyTorch/dal | PyTorch ms, OMP default | "
            "ratio | dal GFLOP/s | PyTorch GFLOP/s | dal peak RSS | PyTorch peak RSS | others' load (cores) |")
    lines = [head, "|" + "---|" * head.count(" |")]
    figures = {}
    for key, label, dal_name, torch_prefix, flops_key in rows:
        dal = ctx.get(dal_name)
        policy, best = fastest(ctx, torch_prefix)
        default = ctx.get("%s-default" % torch_prefix)
        for p in POLICIES:
            s = best if p == policy else ctx.get("%s-%s" % (torch_prefix, p))
            for log in s.failed_logs("ms_median"):
                ctx.failures.append("%s PyTorch %s failed: see %s" % (label, p, log))
        dal_ms, best_ms = dal.values("ms_median"), best.values("ms_median")
        r = ratio(best_ms, dal_ms)
        if r is None and dal.stopped() and spread(best_ms) and not spread(dal_ms):
            cell = "< %.3gx" % (spread(best_ms)[0] / (dal.limit() * 1e3))
        else:
            cell = fmt_ratio(r)
        rss_dal = [v / 1024.0 if v is not None else None for v in dal.values("peak_rss_kib")]
        rss_torch = [v / 1024.0 if v is not None else None for v in best.values("peak_rss_kib")]
        dal_s, best_s = spread(dal_ms), spread(best_ms)
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, fmt_dal_ms(ctx, dal, label),
            "%s (%s)" % (fmt_spread(best_s), policy_label(policy)) if best_s else "failed", cell,
            fmt_spread(spread(default.values("ms_median"))) or "failed",
            fmt_ratio(ratio(default.values("ms_median"), dal_ms)),
            ctx.fmt_gflops(flops_key, dal_s[0] if dal_s else None),
            ctx.fmt_gflops(flops_key, best_s[0] if best_s else None),
            fmt_spread(spread(rss_dal), " MiB") or "-", fmt_spread(spread(rss_torch), " MiB") or "-",
            ctx.fmt_load(dal, best)))
        figures[key] = {"speed": r, "rss": ratio(rss_dal, rss_torch), "loaded": ctx.flagged(dal, best)}
    notes = [
        "- ms: one step per process and round, the median of its timed steps; the cell is the median over the "
        "rounds (min-max over the rounds). Training step: forward, backward, AdamW at the config's batch; "
        "forward: the dVAE's `tokens` entry (images -> token grid) at the forward config's batch, PyTorch "
        "under inference_mode (bench/torch_forward.py).",
        "- ratio = PyTorch ms / dal ms (above 1: dal faster), the ratio of the medians; in brackets the min-max "
        "of each round's own ratio (dal and PyTorch measured back to back). PyTorch's fastest setting leads.",
        "- GFLOP/s: the step's FLOPs counted analytically from the config (bench/flops.py: 2 per multiply-add "
        "of every matmul and convolution, a training step 3x its forward) over the median ms; against the "
        "OpenBLAS sgemm 1024^3 median and the FMA peak (the higher of measured and nominal) below.",
        "- peak RSS: VmHWM of a fresh process (dal's includes the compiler; PyTorch's the interpreter and torch).",
        "- others' load: the most cores that other processes kept busy during any of the row's measurements "
        "(dal and PyTorch's fastest; bench/measure.py, /proc/stat minus the measured process's own CPU time); "
        "LOADED: above %.2f, the figures are not to be trusted." % ctx.loaded,
    ]
    return lines, notes, figures


# ---- 2. sampling ---------------------------------------------------------------

def sample_missing(log):
    """Whether a dal sampling log says this dalc lacks `sample --bench`."""
    try:
        with open(log) as f:
            text = f.read()
    except OSError:
        return False
    return "unknown option" in text or "unknown command" in text


def sample_settings(d, key):
    """PASSIVE and default always, then any other torch-sample-KEY-SETTING.json of any round."""
    prefix, found = "torch-sample-%s-" % key, set()
    for rd in round_dirs(d):
        for name in os.listdir(rd):
            if name.startswith(prefix) and name.endswith(".json"):
                setting = name[len(prefix):-len(".json")]
                if setting not in POLICIES:
                    found.add(setting)
    return POLICIES + sorted(found)


def setting_label(setting):
    """"PASSIVE-blas1" -> "OMP_WAIT_POLICY=PASSIVE, OPENBLAS_NUM_THREADS=1"."""
    policy, _, blas = setting.partition("-blas")
    return policy_label(policy) + (", OPENBLAS_NUM_THREADS=%s" % blas if blas else "")


def sample_rows(ctx):
    shape = "batch 8, 32 text + 64 image tokens" if ctx.config == "bench" else "batch 8"
    head = ("| GPT sampling (%s; %s) | dal image tokens/s | PyTorch image tokens/s, fastest setting | "
            "ratio dal/PyTorch | PyTorch image tokens/s, OMP default | ratio | dal peak RSS | PyTorch peak RSS | "
            "others' load (cores) |" % (ctx.config, shape))
    lines, notes, figures = [head, "|" + "---|" * head.count(" |")], [], {}
    for key, name in SAMPLE_MODES:
        dal = ctx.get("dal-sample-%s" % key)
        runs = [(p, ctx.get("torch-sample-%s-%s" % (key, p))) for p in sample_settings(ctx.d, key)]
        good = [(p, s) for p, s in runs if spread(s.values("tokens_per_s"))]
        setting, best = max(good, key=lambda ps: spread(ps[1].values("tokens_per_s"))[0]) if good else runs[0]
        dal_tps = dal.values("tokens_per_s")
        if spread(dal_tps):
            dal_cell = fmt_spread(spread(dal_tps))
        elif dal.stopped():
            dal_cell = "> %d s (stopped)" % dal.limit()
            ctx.failures.append("GPT sampling (%s) dal: stopped at the %d s limit (DAL_BENCH_TIMEOUT)"
                                % (name, dal.limit()))
        elif dal.measured() and all(sample_missing(r["log"]) for r in dal.measured()):
            dal_cell = "n/a"
            notes.append("- GPT sampling (%s) dal: n/a, this dalc has no `sample --bench` (see %s)"
                         % (name, dal.measured()[0]["log"]))
        else:
            dal_cell = "failed"
        for log in dal.failed_logs("tokens_per_s"):
            if dal_cell != "n/a":
                ctx.failures.append("GPT sampling (%s) dal failed: see %s" % (name, log))
        for p, s in runs:
            for log in s.failed_logs("tokens_per_s"):
                ctx.failures.append("GPT sampling (%s) PyTorch %s failed: see %s" % (name, p, log))
        default = dict(runs)["default"]
        best_s = spread(best.values("tokens_per_s"))
        r = ratio(dal_tps, best.values("tokens_per_s"))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, dal_cell, "%s (%s)" % (fmt_spread(best_s), setting_label(setting)) if best_s else "failed",
            fmt_ratio(r), fmt_spread(spread(default.values("tokens_per_s"))) or "failed",
            fmt_ratio(ratio(dal_tps, default.values("tokens_per_s"))),
            fmt_spread(spread(dal.values("peak_rss_mib")), " MiB") or "-",
            fmt_spread(spread(best.values("peak_rss_mib")), " MiB") or "-", ctx.fmt_load(dal, best)))
        figures[key] = {"speed": r, "loaded": ctx.flagged(dal, best)}
    notes.insert(0, "- GPT sampling: image tokens generated per second (batch x g*g over one whole generation; "
                 "per round the median of the process's generations, then the median over the rounds), each "
                 "token by Gumbel-max at T = 1 from random weights and text ids; KV cache: the text once, then "
                 "one position at a time; no cache: the whole sequence so far at every position. ratio = dal "
                 "tokens/s / PyTorch tokens/s (above 1: dal faster), the rounds' range in brackets. PyTorch's "
                 "fastest of its settings (%s) leads." % "; ".join(
                     sorted({setting_label(p) for k, _ in SAMPLE_MODES for p in sample_settings(ctx.d, k)})))
    return lines, notes, figures


# ---- 3. compile time -------------------------------------------------------------

def compile_runs(d, model, config):
    """[(wall_ms, passes_ms or None)] of compile-MODEL-CONFIG.txt; the first is cold."""
    runs = []
    try:
        with open(os.path.join(d, "compile-%s-%s.txt" % (model, config))) as f:
            for line in f:
                fields = line.split()
                if fields:
                    runs.append((float(fields[0]), float(fields[1]) if len(fields) > 1 and fields[1] != "-"
                                 else None))
    except (OSError, ValueError):
        return []
    return runs


def compile_rows(ctx):
    entries = [("dvae", ctx.config), ("gpt", ctx.config)]
    if ctx.fwd_config != ctx.config:
        entries.append(("dvae", ctx.fwd_config))
    head = "| compile | cold: phases (process) | cached: phases (process), median of the later runs | runs |"
    lines, figures = [head, "|---|---|---|---|"], {}
    for model, config in entries:
        runs = compile_runs(ctx.d, model, config)
        label = "%s.dal %s" % (model, config)
        if not runs:
            lines.append("| %s | failed | - | 0 |" % label)
            ctx.failures.append("compile %s failed: see %s" % (label, os.path.join(
                ctx.d, "compile-%s-%s.log" % (model, config))))
            figures[label] = None
            continue

        def best(rs):
            """The compile figure in seconds: the phases' total, else the process's wall clock."""
            return statistics.median([(p if p is not None else w) for w, p in rs]) / 1e3

        def cell(rs):
            if not rs:
                return "-"
            p = [x for _, x in rs if x is not None]
            wall = statistics.median([w for w, _ in rs]) / 1e3
            return "%.2f s (%.2f s)" % (statistics.median(p) / 1e3, wall) if p else "(%.2f s)" % wall

        lines.append("| %s | %s | %s | %d |" % (label, cell(runs[:1]), cell(runs[1:]), len(runs)))
        figures[label] = (best(runs[:1]), best(runs[1:]) if len(runs) > 1 else None)
    notes = ["- compile: `dalc run FILE --config C --time-passes -- info`, source to runnable native code: the "
             "phases' total (`--time-passes`), and in brackets the whole process's wall clock (start-up and the "
             "state's initialisation added). Cold: the first run, from an empty compile cache "
             "(XDG_CACHE_HOME=OUT/cache); cached: the later runs (the same work for a dalc without a cache)."]
    return lines, notes, figures


# ---- 4. the roof -----------------------------------------------------------------

def roof_lines(ctx):
    out = []
    s = ctx.sgemm
    if "error" in s:
        out.append("- OpenBLAS sgemm: failed (%s)" % s["error"])
        ctx.failures.append("sgemm failed: see %s" % os.path.join(ctx.d, "sgemm.log"))
    else:
        parts = ["%s %s: %.1f GFLOP/s (best %.1f)" % (g["name"], "%dx%dx%d" % (g["m"], g["n"], g["k"]),
                                                      g["gflops_median"], g["gflops_best"]) for g in s["gemms"]]
        out.append("- OpenBLAS sgemm, %d threads (%s): %s" % (s["threads"], s.get("core", "?"), "; ".join(parts)))
    f = ctx.fma
    if "error" in f:
        out.append("- FMA peak: failed (%s)" % f["error"])
        ctx.failures.append("fma_peak failed: see %s" % os.path.join(ctx.d, "fma.log"))
    else:
        isa = f.get("isa", "avx2")
        width = 16 if isa == "avx512" else 8
        out.append("- FMA peak, %d threads: measured %.1f GFLOP/s (a tight %s FMA loop, best of 3); nominal "
                   "%.1f GFLOP/s = %d cores x %.2f GHz (/proc/cpuinfo) x %d flops/cycle (two %d-wide f32 FMA "
                   "units)" % (f["threads"], f["gflops_measured"], "AVX-512" if isa == "avx512" else "AVX2",
                               f["gflops_nominal"], f["threads"], f["cpu_mhz"] / 1e3, 4 * width, width))
    if "error" in ctx.flops:
        out.append("- step FLOPs: failed (%s)" % ctx.flops["error"])
        ctx.failures.append("flops.py failed: see %s" % os.path.join(ctx.d, "flops.log"))
    else:
        names = {"dvae_train": "dVAE training step", "gpt_train": "GPT training step",
                 "dvae_forward": "dVAE forward (`tokens`)"}
        out.append("- step FLOPs (bench/flops.py, analytic): %s" % "; ".join(
            "%s (%s, batch %d) %.4g GFLOP" % (names[k], v["config"], v["batch"], v["flops"] * 1e-9)
            for k, v in ctx.flops.items() if k in names))
    out.append("- the roof is measured once, before the rounds, and suffers from load like the steps: a step "
               "above 100% of sgemm means the roof was measured while the machine was busier")
    return out


# ---- 5. load -------------------------------------------------------------------

def load_rows(ctx):
    n = max([len(s.runs) for s in ctx.series] or [0])
    head = "| measurement | " + " | ".join("round %d: others' cores (load avg before -> after)" % (i + 1)
                                           for i in range(n)) + " |"
    lines = [head, "|" + "---|" * (n + 1)]
    seen = set()
    for s in ctx.series:
        if s.name in seen or not any(r["load"] for r in s.runs):
            continue
        seen.add(s.name)
        cells = []
        for r in s.runs:
            rec = r["load"]
            if not rec:
                cells.append("not measured" if r["absent"] else "-")
                continue
            cells.append("%.2f%s (%.2f -> %.2f)" % (rec["others_cores"], " LOADED" if rec["others_cores"] >
                                                    ctx.loaded else "", rec["loadavg_before"],
                                                    rec["loadavg_after"]))
        lines.append("| %s | %s |" % (s.name, " | ".join(cells + ["-"] * (n - len(cells)))))
    return lines


# ---- 6. targets ----------------------------------------------------------------

def target_rows(ctx, steps, samples, compiles):
    head = "| figure | now (median, rounds' range) | target | met? |"
    lines = [head, "|---|---|---|---|"]

    def met(ok, loaded):
        return ("yes" if ok else "no") + (" (measured under load)" if loaded else "")

    def speed(label, fig, target):
        r = fig["speed"] if fig else None
        if r is None:
            lines.append("| %s | - | >= %gx | not measured |" % (label, target))
        else:
            lines.append("| %s | %s | >= %gx | %s |" % (label, fmt_ratio(r), target, met(r[0] >= target,
                                                                                       fig["loaded"])))

    c, fc = ctx.config, ctx.fwd_config
    speed("dVAE %s training step" % c, steps.get("dvae"), 1.75)
    speed("GPT %s training step" % c, steps.get("gpt"), 2.0)
    speed("GPT %s KV-cached sampling (batch 8)" % c, samples.get("cache"), 2.5)
    speed("dVAE %s forward (`tokens`), batch %s" % (fc, "1" if fc == "paper" else "of the config"),
          steps.get("forward"), 1.5)
    for key, name in [("dvae", "dVAE"), ("gpt", "GPT")]:
        fig = steps.get(key)
        r = fig["rss"] if fig else None
        if r is None:
            lines.append("| peak RSS, %s %s step (dal/PyTorch) | - | <= 0.5x | not measured |" % (name, c))
        else:
            lines.append("| peak RSS, %s %s step (dal/PyTorch) | %s | <= 0.5x | %s |" % (
                name, c, fmt_ratio(r), "yes" if r[0] <= 0.5 else "no"))
    for label, fig in compiles.items():
        if fig is None:
            lines.append("| compile %s | failed | < 2 s cold, < 0.3 s cached | not measured |" % label)
            continue
        cold, cached = fig
        now = "%.2f s cold, %s cached" % (cold, "%.2f s" % cached if cached is not None else "-")
        ok = cold < 2 and cached is not None and cached < 0.3
        lines.append("| compile %s | %s | < 2 s cold, < 0.3 s cached | %s |" % (
            label, now, "yes" if ok else "no" if cached is not None or cold >= 2 else "not measured (cached)"))
    return lines


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py DIR")
    ctx = Context(sys.argv[1])
    s_lines, s_notes, steps = step_rows(ctx)
    p_lines, p_notes, samples = sample_rows(ctx)
    c_lines, c_notes, compiles = compile_rows(ctx)
    roof = roof_lines(ctx)
    torch_version = "?"
    for s in ctx.series:
        for r in s.runs:
            if r["m"].get("torch"):
                torch_version = r["m"]["torch"]
    m = ctx.machine
    rounds = len(round_dirs(ctx.d))
    machine = ("- machine: %s, %s cores, load average %s at the start; %d interleaved round%s; PyTorch %s; dal at "
               "%s%s" % (m.get("cpu", "?"), m.get("cores", "?"), m.get("load", "?"), rounds,
                         "" if rounds == 1 else "s", torch_version, m.get("commit", "?"),
                         " (dalc %s)" % m["dalc_flags"] if m.get("dalc_flags") else ""))
    if m.get("conv_table"):
        machine += ("; convolutions by the conv table `dalc tune-conv` measured before the rounds"
                    if m["conv_table"] == "tuned" else "; convolutions by -fconv=auto's fixed rules (no conv table)")
    t_lines = target_rows(ctx, steps, samples, compiles)
    l_lines = load_rows(ctx)
    failures = ["- %s" % f for f in ctx.failures]
    text = "\n".join(
        ["Targets (issue 11; dal / PyTorch in its fastest setting, same run; above 1: dal faster):", ""] + t_lines +
        [""] + s_lines + [""] + s_notes + [""] + p_lines + [""] + p_notes + [""] + c_lines + [""] + c_notes +
        ["", "Roof and machine:", ""] + roof + [machine] + ["", "Load of the other processes per measurement "
                                                            "(cores they kept busy on average):", ""] +
        l_lines + ([""] + failures if failures else [])) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(ctx.d, "results.md"), "w") as f:
        f.write(text)
    return 1 if any("failed" in f for f in ctx.failures) else 0


if __name__ == "__main__":
    sys.exit(main())
