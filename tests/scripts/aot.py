"""aot.py BUILD_DIR — standalone executables built ahead of time
(`dalc FILE.dal -o EXE`, codegen/aot.h) against `dalc run`.

  1. The GPT tiny and dVAE tiny executables: built silently, no libLLVM in
     ldd, `EXE info` identical to `dalc run FILE -- info`; every entry run
     by the executable agrees with the reference executor (1e-5 relative,
     integers exact; training entries also in the state they leave) and
     every inference entry bit for bit with the JIT (`dalc run --fn`, the
     same compiled code); `EXE train --steps 5` logs the same losses and
     writes the same checkpoint, byte for byte, as `dalc run FILE -- train`,
     and a run stopped after 3 steps and resumed ends the same.
  2. Bad command lines and bad builds are clear errors (exit 1, a message
     that names the problem, no crash, no temporary directory left behind);
     DAL_KEEP_TEMPS=1 keeps the intermediate files.
  3. Every reference-executor op through an AOT executable:
     tests/fixtures/ops.dal (one entry per op family, a training step through
     the backward ops) built fused and -fno-fuse; each entry against the
     reference executor. The fixture is checked to contain every op of
     ir/ops.def.
  4. tests/scripts/parity.py (PyTorch parity) with DAL_PARITY_AOT=1: the
     models' entries through executables.

Prints one line per check ("PASS ...") and exits non-zero if any fails. Run
with /usr/bin/python3.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch_ref"))
import dal_io  # noqa: E402

TOL = 1e-5
SEED, STEP = 3, 2          # parameters from their initialisers under SEED; STEP drives Gumbel noise
ENV = dict(os.environ, DAL_THREADS="2")  # the JIT and the executables on the same thread count
SCALARS = {"opt.lr": 1e-3, "tau": 1.0, "beta": 0.1,
           "pos": 12}  # decode_step's sequence position: the tiny GPT's Lt = 8 <= pos < N = 23
GRAD_FLOOR = 1e-3          # see states_agree

failed = 0


def report(ok, what, detail=""):
    global failed
    failed += not ok
    print("%s %s%s" % ("PASS" if ok else "FAIL", what, (" " + detail) if detail else ""))
    sys.stdout.flush()
    return ok


def run(argv, env=None, **kw):
    return subprocess.run(argv, cwd=ROOT, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


def first_lines(proc, n=4):
    return " | ".join((proc.stderr or proc.stdout).strip().splitlines()[:n])


# ---- entries and their inputs ------------------------------------------------

SIG = re.compile(r"^\s+(\w+)\((.*)\) -> (.*?)(\s+\[train\])?$")
ARG = re.compile(r"([\w.]+): (f32|i32)(?:\[([\d, ]*)\])?")


def entries(exe):
    """[(name, [(input, dtype, shape)], [(output, dtype, shape)], train)] from `EXE info`."""
    out = []
    for line in run([exe, "info"]).stdout.splitlines():
        m = SIG.match(line)
        if m:
            args = [[(a, d, tuple(int(x) for x in s.split(",")) if s else ()) for a, d, s in ARG.findall(part)]
                    for part in (m.group(2), m.group(3))]
            out.append((m.group(1), args[0], args[1], bool(m.group(4))))
    return out


def write_inputs(tmp, name, inputs):
    """Random inputs for entry 'name' (the same for the same name): f32
    standard normal, i32 in [0, 5), known scalars at their usual values.
    Returns the --in flags."""
    rng = np.random.default_rng(sum(map(ord, name)))
    flags = []
    for arg, dtype, shape in inputs:
        if arg in SCALARS and shape == ():
            flags += ["--in", "%s=%r" % (arg, SCALARS[arg])]
            continue
        value = rng.integers(0, 5, shape).astype(np.int32) if dtype == "i32" else \
            rng.standard_normal(shape).astype(np.float32)
        path = os.path.join(tmp, "%s.%s.npy" % (name, arg))
        dal_io.save_npy(path, value)
        flags += ["--in", "%s=%s" % (arg, path)]
    return flags


def run_entry(prefix, name, flags, out, state=None):
    """prefix + run --fn name ...: the output array (and the state dict if
    state names a file to save it to); raises RuntimeError with the message."""
    argv = prefix + ["--fn", name] + flags + ["--out", "%s=%s" % (name, out), "--seed", str(SEED)]
    if prefix[-1] == "run":  # the executables' `run` (not dalc run --fn) also takes --step and --save-state
        argv += ["--step", str(STEP)] + (["--save-state", state] if state else [])
    proc = run(argv)
    if proc.returncode != 0 or not os.path.exists(out):
        raise RuntimeError("exit %d: %s" % (proc.returncode, first_lines(proc)))
    got = dal_io.load_npy(out)
    os.remove(out)
    if not state:
        return got, None
    st = dal_io.load_safetensors(state)
    os.remove(state)
    return got, st


def rel_err(got, want):
    """(ok, text): integers must be equal, floats within TOL relative to max|want|."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return False, "%s %s, want %s %s" % (got.dtype, list(got.shape), want.dtype, list(want.shape))
    if want.dtype.kind in "iu":
        wrong = int((got != want).sum())
        return wrong == 0, "exact" if wrong == 0 else "%d of %d differ" % (wrong, want.size)
    if not np.all(np.isfinite(got) == np.isfinite(want)):
        return False, "non-finite values differ"
    fin = np.isfinite(want)
    scale = max(float(np.abs(want[fin]).max()) if fin.any() else 0.0, 1e-30)
    rel = float(np.abs(got[fin].astype(np.float64) - want[fin]).max() / scale) if fin.any() else 0.0
    return rel <= TOL, "rel=%.2g" % rel


def states_agree(got, want):
    """The state after one training step: (ok, text). Every tensor within
    TOL (the moments, linear in the gradient, everywhere), except parameter
    values where AdamW's first step is ill-conditioned. That update is
    lr * g / (|g| + eps) with eps = 1e-8 (every model here), whose
    derivative eps / (|g| + eps)^2 turns the gradients' rounding differences
    (about 1e-6 of the tensor's largest gradient G, measured) into update
    differences above TOL once |g| < ~1e-4 G; a gradient that is zero up to
    rounding (the key bias's) moves its parameter by up to +-lr either way.
    So values whose reference gradient is under GRAD_FLOOR * G (|opt.m|
    against its tensor's max) need only move by at most lr, as any first
    step does."""
    if sorted(got) != sorted(want):
        return False, "different tensors: %s" % sorted(set(got) ^ set(want))
    lr, noisy, total = SCALARS["opt.lr"], 0, 0
    for k in want:
        g, w, m = got[k], want[k], want.get("opt.m." + k)
        if m is not None and g.shape == w.shape and w.dtype.kind == "f":
            flat = np.abs(m) <= GRAD_FLOOR * max(float(np.abs(m).max()), 1e-30)
            noisy, total = noisy + int(flat.sum()), total + flat.size
            if np.any(np.abs(g[flat].astype(np.float64) - w[flat]) > 2 * lr * (1 + 1e-3)):
                return False, "%s: an update larger than lr" % k
            g, w = g[~flat], w[~flat]
        ok, d = rel_err(g, w)
        if not ok:
            return False, "%s: %s" % (k, d)
    return True, "%d tensors (%d of %d parameter values under the gradient floor)" % (len(want), noisy, total)


def against_ref(exe, model, label, tmp, config=None):
    """Every entry of exe against `dalc run MODEL --backend=ref -- run`."""
    ref = [os.path.join(BUILD, "dalc"), "run", model] + (["--config", config] if config else []) + \
        ["--backend=ref", "--", "run"]
    for name, inputs, _, train in entries(exe):
        flags = write_inputs(tmp, name, inputs)
        try:
            got, got_st = run_entry([exe, "run"], name, flags, os.path.join(tmp, "exe.npy"),
                                    os.path.join(tmp, "exe.safetensors") if train else None)
            want, want_st = run_entry(ref, name, flags, os.path.join(tmp, "ref.npy"),
                                      os.path.join(tmp, "ref.safetensors") if train else None)
        except RuntimeError as e:
            report(False, "%s %s vs reference" % (label, name), str(e))
            continue
        ok, detail = rel_err(got, want)
        if train and ok:
            ok, detail = states_agree(got_st, want_st)
            detail = "loss and state after the step: " + detail
        report(ok, "%s %s vs reference" % (label, name), detail)


def against_jit(exe, model, config, label, tmp):
    """Every inference entry bit for bit against `dalc run MODEL --fn NAME` (JIT)."""
    jit = [os.path.join(BUILD, "dalc"), "run", model, "--config", config]
    for name, inputs, _, train in entries(exe):
        if train:
            continue  # training steps: the train logs and checkpoints below
        flags = write_inputs(tmp, name, inputs)
        try:
            got, _ = run_entry([exe, "run"], name, flags, os.path.join(tmp, "exe.npy"))
            want, _ = run_entry(jit, name, flags, os.path.join(tmp, "jit.npy"))
        except RuntimeError as e:
            report(False, "%s %s vs JIT" % (label, name), str(e))
            continue
        same = got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
        report(same, "%s %s vs JIT" % (label, name), "bit-identical" if same else "differ: " + rel_err(got, want)[1])


# ---- building ------------------------------------------------------------------

def build(model, config, out, extra=()):
    """dalc MODEL -o OUT: (ok, seconds, text)."""
    argv = [os.path.join(BUILD, "dalc"), model] + (["--config", config] if config else []) + list(extra) + ["-o", out]
    t0 = time.time()
    proc = run(argv)
    sec = time.time() - t0
    if proc.returncode != 0 or not os.access(out, os.X_OK):
        return False, sec, "exit %d: %s" % (proc.returncode, first_lines(proc))
    if proc.stderr.strip():
        return False, sec, "the build printed: " + first_lines(proc)
    return True, sec, "%.1f s" % sec


def check_exe(exe, model, config, label):
    ldd = run(["ldd", exe]).stdout
    report("blas" in ldd and "LLVM" not in ldd, "%s: ldd shows OpenBLAS and no libLLVM" % label)
    mine = run([exe, "info"])
    theirs = run([os.path.join(BUILD, "dalc"), "run", model, "--config", config, "--", "info"])
    report(mine.returncode == 0 and mine.stdout == theirs.stdout and "entries:" in mine.stdout,
           "%s: `EXE info` is `dalc run -- info`" % label, "" if mine.stdout == theirs.stdout else
           "got %r" % mine.stdout[:200])


def train_same(exe, model, config, label, tmp, flags):
    """EXE train and dalc run -- train: the same log and checkpoint bytes;
    3 steps + resume to 5 ends the same as 5 steps."""
    def train(prefix, tag, steps, resume=False):
        log, ck = os.path.join(tmp, tag + ".tsv"), os.path.join(tmp, tag + ".safetensors")
        argv = prefix + ["train", "--steps", str(steps), "--seed", "7", "--quiet", "--log", log, "--checkpoint", ck] + \
            flags + (["--resume", ck] if resume else [])
        proc = run(argv)
        if proc.returncode != 0:
            raise RuntimeError("exit %d: %s" % (proc.returncode, first_lines(proc)))
        return open(log, "rb").read(), open(ck, "rb").read()

    dalc = [os.path.join(BUILD, "dalc"), "run", model, "--config", config, "--"]
    try:
        exe_log, exe_ck = train([exe], "exe", 5)
        jit_log, jit_ck = train(dalc, "jit", 5)
        train([exe], "resumed", 3)
        res_log, res_ck = train([exe], "resumed", 5, resume=True)
    except RuntimeError as e:
        report(False, "%s: train --steps 5" % label, str(e))
        return
    lines = exe_log.decode().strip().splitlines()
    report(len(lines) == 6 and exe_log == jit_log, "%s: train --steps 5 logs the same losses as dalc run -- train"
           % label, "last: %s" % lines[-1].replace("\t", " ") if lines else "empty log")
    report(exe_ck == jit_ck, "%s: and writes the same checkpoint, byte for byte" % label)
    report(res_log == exe_log and res_ck == exe_ck, "%s: 3 steps, then --resume to 5: the same log and checkpoint"
           % label)


# ---- errors ------------------------------------------------------------------------

def errors(exe, tmp):
    def fails(argv, want, what, env=None):
        proc = run(argv, env=env)
        ok = proc.returncode == 1 and re.search(want, proc.stderr) is not None
        report(ok, what, "" if ok else "exit %d: %s" % (proc.returncode, first_lines(proc)))

    fails([exe], r"usage: gpt COMMAND", "EXE without a command: usage, exit 1")
    fails([exe, "frobnicate"], r"^gpt: error: unknown command 'frobnicate'", "EXE frobnicate: unknown command")
    fails([exe, "run", "--fn", "nope"], r"no entry 'nope'.*logits", "EXE run --fn nope: lists the entries")
    fails([exe, "run", "--fn", "logits", "--in", "text=/nonexistent/t.npy"], r"/nonexistent/t\.npy",
          "EXE run with a missing input file: names the file")
    fails([exe, "train", "--steps", "two"], r"--steps.*'two'", "EXE train --steps two: names the flag")
    logits = [e for e in entries(exe) if e[0] == "logits"][0]
    good = write_inputs(tmp, "logits", logits[1])
    bad = os.path.join(tmp, "bad.npy")
    dal_io.save_npy(bad, np.zeros((3, 3), np.float32))
    image = good[good.index("--in", 1):] if good[1].startswith("text=") else good[:2]
    fails([exe, "run", "--fn", "logits", "--in", "text=" + bad] + image, r"text.*\[4, 8\]",
          "EXE run with a wrong-shaped input: names the input and its shape")
    fails([exe, "run", "--fn", "logits"] + good, r"DAL_THREADS", "DAL_THREADS=many: a clear error",
          env=dict(ENV, DAL_THREADS="many"))

    dalc = os.path.join(BUILD, "dalc")
    fails([dalc, "models/gpt.dal", "--config", "tiny", "-o", "/nonexistent-dir/gpt"], r"/nonexistent-dir/gpt",
          "dalc -o into a missing directory: names the file")
    fails([dalc, "models/gpt.dal", "--config", "huge", "-o", os.path.join(tmp, "x")], r"huge",
          "dalc --config huge -o EXE: the config error")
    src = os.path.join(tmp, "broken.dal")
    open(src, "w").write("@infer\ndef f(x: f32[3]) { return x @ x }\n")
    fails([dalc, src, "-o", os.path.join(tmp, "x")], r"broken\.dal:2:", "dalc broken.dal -o EXE: file:line error")
    report(not os.path.exists(os.path.join(tmp, "x")), "a failed build leaves no executable")
    # $CC is split at blanks, as make does ("ccache gcc", "gcc -m64")
    exe_cc = os.path.join(tmp, "gpt_cc")
    proc = run([dalc, "models/gpt.dal", "--config", "tiny", "-o", exe_cc], env=dict(ENV, CC="cc  -g0"))
    ok = proc.returncode == 0 and run([exe_cc, "info"]).returncode == 0
    report(ok, "CC='cc  -g0': the compiler's flags are passed as words", "" if ok else first_lines(proc))
    fails([dalc, "models/gpt.dal", "--config", "tiny", "-o", exe_cc], r"cannot run nosuch-cc:",
          "CC='nosuch-cc -O1': names the missing compiler", env=dict(ENV, CC="nosuch-cc -O1"))


def temps(tmp):
    """No dalc-aot-* directory is left behind by the builds (TMPDIR = tmp);
    DAL_KEEP_TEMPS=1 keeps one with the objects and main.c; --time-passes
    shows the build's phases."""
    left = glob.glob(os.path.join(tmp, "dalc-aot-*"))
    report(not left, "builds and failed builds leave no temporary directory", " ".join(left))
    env = dict(ENV, TMPDIR=tmp, DAL_KEEP_TEMPS="1")
    proc = run([os.path.join(BUILD, "dalc"), "tests/fixtures/ops.dal", "-fno-fuse", "--time-passes", "-o",
                os.path.join(tmp, "k")], env=env)
    kept = glob.glob(os.path.join(tmp, "dalc-aot-*"))
    files = sorted(os.listdir(kept[0])) if len(kept) == 1 else []
    report(proc.returncode == 0 and "main.c" in files and "entry0.o" in files and "kept in" in proc.stderr,
           "DAL_KEEP_TEMPS=1 keeps main.c and the objects", " ".join(files[:4]))
    for k in kept:
        shutil.rmtree(k)
    phases = ["codegen: lowering", "codegen: LLVM optimise", "aot: object emission", "aot: C compile", "aot: link"]
    missing = [p for p in phases if not re.search(r"ms .*%s" % p, proc.stderr)]
    report(not missing, "--time-passes shows the build's phases", "missing: %s" % missing if missing else "")


# ---- ops.dal -------------------------------------------------------------------------

def ops_coverage():
    """Every op of ir/ops.def appears in ops.dal's graphs (with gradients)."""
    names = set(re.findall(r'^OP\(\w+,\s*"(\w+)"', open(os.path.join(ROOT, "ir", "ops.def")).read(), re.M))
    proc = run([os.path.join(BUILD, "dalc"), "tests/fixtures/ops.dal", "--emit=ir", "--grad"])
    used = set(re.findall(r"= (\w+)", proc.stdout))
    # STATE nodes come with the optimizer: the training step's AdamW moments, not --grad
    missing = sorted(names - used - {"state"})
    report(proc.returncode == 0 and not missing, "ops.dal uses every op of ir/ops.def",
           "missing: " + ", ".join(missing) if missing else "%d ops" % len(names))


def parity_aot():
    t0 = time.time()
    proc = run(["/usr/bin/python3", "tests/scripts/parity.py", BUILD], env=dict(ENV, DAL_PARITY_AOT="1"))
    cases = [l for l in proc.stdout.splitlines() if l.startswith(("PASS", "FAIL"))]
    bad = [l for l in cases if l.startswith("FAIL")]
    report(proc.returncode == 0 and len(cases) > 5 and not bad, "parity.py through AOT executables (DAL_PARITY_AOT=1)",
           "%d cases, %.0f s" % (len(cases), time.time() - t0) if not bad else " | ".join(bad[:3]) or first_lines(proc))


def main():
    global BUILD
    if len(sys.argv) != 2:
        print("usage: aot.py BUILD_DIR", file=sys.stderr)
        return 2
    BUILD = os.path.abspath(sys.argv[1])
    if not os.access(os.path.join(BUILD, "dalc"), os.X_OK):
        report(False, "aot: %s/dalc is not built" % BUILD)
        return 1
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="dal-aot-test-")
    ENV["TMPDIR"] = tmp  # every build's temporary directory goes here (checked by temps())
    try:
        tokens = os.path.join(tmp, "tokens")
        rng = np.random.default_rng(1)
        dal_io.save_npy(tokens + ".text.npy", rng.integers(0, 64, (8, 8)).astype(np.int32))
        dal_io.save_npy(tokens + ".image.npy", rng.integers(0, 64, (8, 16)).astype(np.int32))
        models = [
            ("gpt", "models/gpt.dal", ["--data", "npy:text=%s.text.npy,image=%s.image.npy" % (tokens, tokens)]),
            ("dvae", "models/dvae.dal", ["--set", "tau=1", "--set", "beta=0.1"]),
        ]
        for label, model, data in models:
            exe = os.path.join(tmp, label)
            ok, _, detail = build(model, "tiny", exe)
            if not report(ok, "%s tiny: dalc %s -o EXE" % (label, model), detail):
                continue
            label += " tiny"
            check_exe(exe, model, "tiny", label)
            against_ref(exe, model, label, tmp, "tiny")
            against_jit(exe, model, "tiny", label, tmp)
            train_same(exe, model, "tiny", label, tmp, data)
            if label.startswith("gpt"):
                errors(exe, tmp)
        ops_coverage()
        for label, extra in (("ops", []), ("ops -fno-fuse", ["-fno-fuse"])):
            exe = os.path.join(tmp, label.replace(" ", ""))
            ok, _, detail = build("tests/fixtures/ops.dal", None, exe, extra)
            if report(ok, "dalc tests/fixtures/ops.dal %s-o EXE" % " ".join(e + " " for e in extra), detail):
                against_ref(exe, "tests/fixtures/ops.dal", label, tmp)
        temps(tmp)
        parity_aot()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("aot: %d failed (%.0f s)" % (failed, time.time() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
