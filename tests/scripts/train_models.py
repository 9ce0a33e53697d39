"""train_models.py BUILD_DIR — issue 3's training acceptance, through

    BUILD_DIR/dalc run models/X.dal --config tiny -- train --steps N ... --log FILE.tsv

(a) dVAE tiny on the built-in `shapes` data, 300 steps of `--fn loss`, tau
    annealed 1 -> 0.5, beta 0.01: the mean of the last 10 logged losses is at
    most half the step-0 loss.
(b) GPT tiny on a fixed set of 8 (text, image) rows (written with numpy,
    `--data npy:text=t.npy,image=m.npy`, batch 4), 150 steps at lr 3e-3:
    the mean of the last 10 logged losses is below 0.5 (it memorises them).
(c) Kill and resume, dVAE tiny, 10 steps, against an uninterrupted run with
    the same seed and flags (checkpoints every 3 steps):
    - SIGINT mid-run (no periodic checkpoints, so any checkpoint is the
      signal's): exit status 130, the checkpoint holds every step logged,
      no temporary file is left; resumed from it, the --log TSV and the final
      checkpoint are byte-identical to the uninterrupted run's.
    - SIGKILL after the first checkpoint, with steps logged past it: resumed
      from it, the same byte-identical log and final checkpoint.
    - Torn writes: runs checkpointing every step are SIGKILLed the moment the
      k-th checkpoint's temporary file appears (k = 1..4). The checkpoint
      path must then hold either nothing (k = 1) or a complete checkpoint of
      the step before; the partial data is only ever in the temporary file.
      The last of these runs, resumed, gives the uninterrupted log again.
(d) dVAE tiny on `fashion-mnist` (Debian's dataset-fashion-mnist), 300 steps
    at lr 3e-3, otherwise as (a): the same halving of the loss.
(a) runs in the background while (b) and (c) run: about 105 s of CPU time
in all; the 300 dVAE steps (2-3 per second on the reference executor) set
the wall time. Prints one line per check, exits non-zero on any failure. Run with
/usr/bin/python3.
"""
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch_ref"))
import dal_io  # noqa: E402

DVAE = [os.path.join(ROOT, "models", "dvae.dal"), "--config", "tiny"]
GPT = [os.path.join(ROOT, "models", "gpt.dal"), "--config", "tiny"]
DVAE_STEPS, DVAE_DROP = 300, 0.5
GPT_STEPS, GPT_LR, GPT_TARGET = 150, 3e-3, 0.5
TAIL = 10                     # losses averaged at the end of a run
RESUME = ["--fn", "loss", "--steps", "10", "--seed", "11", "--anneal", "tau=1:0.5",
          "--set", "beta=0.01", "--quiet"]
WAIT = 120.0                  # seconds any one wait may take before the check fails

failures = 0


FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

def report(ok, text):
    global failures
    failures += not ok
    print("%s %s" % ("PASS" if ok else "FAIL", text), flush=True)
    return ok


def train_argv(dalc, model, flags):
    return [dalc, "run"] + model + ["--", "train"] + flags


def start(argv, err_path):
    """Starts dalc with stderr to a file (a pipe nobody reads could fill)."""
    err = open(err_path, "w")
    try:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    finally:
        err.close()


def tail_text(path, n=4):
    try:
        with open(path) as f:
            return " | ".join(f.read().strip().splitlines()[-n:])
    except OSError:
        return ""


def read_log(path):
    """The loss column of a --log TSV, in step order (ValueError if malformed)."""
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines or lines[0].split("\t")[:2] != ["step", "loss"]:
        raise ValueError("%s: no 'step<TAB>loss' header" % path)
    losses = []
    for i, line in enumerate(lines[1:]):
        cols = line.split("\t")
        if len(cols) < 2 or cols[0] != str(i):
            raise ValueError("%s: line %d is not step %d: %r" % (path, i + 2, i, line))
        losses.append(float(cols[1]))
    return losses


def log_steps(path):
    """Step lines in a log being written (0 if it does not exist yet)."""
    try:
        with open(path) as f:
            return max(sum(1 for _ in f) - 1, 0)
    except OSError:
        return 0


def wait_for(cond, proc, what):
    """Polls cond() until true; False if proc ends first or WAIT passes."""
    end = time.time() + WAIT
    while time.time() < end:
        if cond():
            return True
        if proc.poll() is not None:
            return cond()
        time.sleep(0.02)
    print("  (timed out waiting for %s)" % what)
    return False


def checkpoint_step(path):
    """dal.step of a complete checkpoint; ValueError if it is not complete."""
    meta, end, size = dal_io.safetensors_layout(path)
    if end != size:
        raise ValueError("%s: %d bytes, its header describes %d" % (path, size, end))
    dal_io.load_safetensors(path)
    return int(meta["dal.step"])


def same_bytes(a, b):
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


def temp_files(directory, base):
    """The atomic writer's temporaries of checkpoint 'base' (fileio.c: BASE.tmp.PID.N)."""
    return sorted(f for f in os.listdir(directory) if f.startswith(base + ".tmp."))


# ---- (a) and (b): the losses go down ---------------------------------------------------

def check_decrease(label, log, rc, err, want):
    """want(first, last_mean) -> bool; reports the numbers."""
    if rc != 0:
        return report(False, "%s: dalc exit %d: %s" % (label, rc, tail_text(err)))
    try:
        losses = read_log(log)
    except (OSError, ValueError) as e:
        return report(False, "%s: %s" % (label, e))
    if not losses or not all(math.isfinite(v) for v in losses):
        return report(False, "%s: %d losses logged, some not finite" % (label, len(losses)))
    first, last = losses[0], float(np.mean(losses[-TAIL:]))
    ok, text = want(len(losses), first, last)
    return report(ok, "%s: %d steps, loss %.4g at step 0, mean of the last %d %.4g (%s)" % (
        label, len(losses), first, TAIL, last, text))


def gpt_tokens(directory):
    """8 fixed (text, image) rows as MODELS.md describes them: each text row
    has its own first token (so the rest of the row is predictable from it),
    a length in [1, Lt], pad id Vt + p at padded position p."""
    Lt, Vt, K, g = 8, 64, 64, 4
    rng = np.random.default_rng(2024)
    text = rng.integers(0, Vt, (8, Lt)).astype(np.int32)
    text[:, 0] = rng.permutation(Vt)[:8]
    for row, length in enumerate([8, 5, 3, 8, 6, 2, 7, 4]):
        text[row, length:] = Vt + np.arange(length, Lt)
    image = rng.integers(0, K, (8, g * g)).astype(np.int32)
    t, m = os.path.join(directory, "t.npy"), os.path.join(directory, "m.npy")
    np.save(t, text)
    np.save(m, image)
    return "npy:text=%s,image=%s" % (t, m)


# ---- (c): kill and resume --------------------------------------------------------------

def resume_checks(dalc, d):
    """On the reference executor, whose steps are slow enough that the
    signals land mid-run (native code runs these 10 steps in a blink; its
    resume is checked by tests/scripts/aot.py)."""
    saved = os.environ.get("DAL_BACKEND")
    os.environ["DAL_BACKEND"] = "ref"
    try:
        resume_checks_on(dalc, d)
    finally:
        if saved is None:
            del os.environ["DAL_BACKEND"]
        else:
            os.environ["DAL_BACKEND"] = saved


def resume_checks_on(dalc, d):
    ref_log, ref_ckpt = os.path.join(d, "ref.tsv"), os.path.join(d, "ref.safetensors")
    err = os.path.join(d, "err")

    def train(flags):
        with open(err, "w") as f:
            return subprocess.run(train_argv(dalc, DVAE, RESUME + flags), stdout=subprocess.DEVNULL,
                                  stderr=f).returncode

    rc = train(["--every", "3", "--log", ref_log, "--checkpoint", ref_ckpt])
    if not report(rc == 0 and log_steps(ref_log) == 10,
                  "resume: the uninterrupted run (10 steps, checkpoints every 3) exit %d, %d steps logged%s"
                  % (rc, log_steps(ref_log), "" if rc == 0 else ": " + tail_text(err))):
        return

    def same_as_ref(label, log, ckpt):
        report(same_bytes(log, ref_log), "%s: the resumed run's log is byte-identical to the uninterrupted one"
               % label)
        report(same_bytes(ckpt, ref_ckpt), "%s: the final checkpoints are byte-identical" % label)

    # -- SIGINT: finish the step, write a checkpoint, exit 130
    log, ckpt = os.path.join(d, "int.tsv"), os.path.join(d, "int.safetensors")
    proc = start(train_argv(dalc, DVAE, RESUME + ["--every", "none", "--log", log, "--checkpoint", ckpt]), err)
    if wait_for(lambda: log_steps(log) >= 4, proc, "4 steps"):
        proc.send_signal(signal.SIGINT)
    rc = proc.wait()
    logged = log_steps(log)
    try:
        step = checkpoint_step(ckpt)
    except (OSError, ValueError, KeyError) as e:
        step = "none (%s)" % e
    report(rc == 128 + signal.SIGINT and step == logged and 0 < logged < 10,
           "resume: SIGINT after step %d: exit %d, the checkpoint holds step %s, %d steps logged, %s"
           % (logged, rc, step, logged, tail_text(err, 1)))
    left = temp_files(d, "int.safetensors")
    report(not left, "resume: SIGINT leaves no temporary file%s" % (": " + ", ".join(left) if left else ""))
    rc = train(["--every", "none", "--log", log, "--checkpoint", ckpt, "--resume", ckpt])
    report(rc == 0, "resume: from the SIGINT checkpoint: exit %d" % rc)
    same_as_ref("resume: SIGINT", log, ckpt)

    # -- SIGKILL after the first checkpoint, with steps logged past it
    log, ckpt = os.path.join(d, "kill.tsv"), os.path.join(d, "kill.safetensors")
    proc = start(train_argv(dalc, DVAE, RESUME + ["--every", "3", "--log", log, "--checkpoint", ckpt]), err)
    if wait_for(lambda: os.path.exists(ckpt) and log_steps(log) >= 5, proc, "a checkpoint and 5 steps"):
        proc.kill()
    proc.wait()
    logged = log_steps(log)
    try:
        step = checkpoint_step(ckpt)
    except (OSError, ValueError, KeyError) as e:
        step = "none (%s)" % e
    report(step == 3 and logged > step and logged < 10,
           "resume: SIGKILL with %d steps logged, the last checkpoint at step %s" % (logged, step))
    rc = train(["--every", "3", "--log", log, "--checkpoint", ckpt, "--resume", ckpt])
    report(rc == 0, "resume: from the checkpoint before SIGKILL: exit %d" % rc)
    same_as_ref("resume: SIGKILL", log, ckpt)

    torn_writes(dalc, d, ref_log, ref_ckpt)


def torn_writes(dalc, d, ref_log, ref_ckpt):
    """SIGKILL while the k-th checkpoint is being written (--every 1)."""
    mid_write, complete, last = 0, True, None
    for k in range(1, 5):
        base = "torn%d.safetensors" % k
        log, ckpt = os.path.join(d, "torn%d.tsv" % k), os.path.join(d, base)
        proc = start(train_argv(dalc, DVAE, RESUME + ["--every", "1", "--log", log, "--checkpoint", ckpt]),
                     os.path.join(d, "err"))
        seen = set()
        end = time.time() + WAIT
        while proc.poll() is None and time.time() < end:
            seen.update(temp_files(d, base))
            if len(seen) >= k:
                proc.kill()
                break
            time.sleep(0.0005)
        proc.wait()
        left = temp_files(d, base)
        partial = [os.path.getsize(os.path.join(d, f)) for f in left]
        mid_write += bool(left)
        try:
            step = checkpoint_step(ckpt) if os.path.exists(ckpt) else None
        except (OSError, ValueError, KeyError) as e:
            step = "torn (%s)" % e
        ok = (step is None and k == 1) or isinstance(step, int)
        complete = complete and ok
        print("  SIGKILL at checkpoint write %d: checkpoint %s, temporary files left: %s" % (
            k, "absent" if step is None else "complete, step %s" % step if ok else step,
            ", ".join("%s (%d bytes)" % (f, n) for f, n in zip(left, partial)) or "none"))
        last = (log, ckpt)
    report(complete, "resume: 4 SIGKILLs during checkpoint writes left only complete checkpoints "
           "(%d of them landed mid-write, the partial data only in PATH.tmp.PID.N)" % mid_write)
    report(mid_write > 0, "resume: at least one SIGKILL landed while a checkpoint was being written (%d of 4)"
           % mid_write)
    log, ckpt = last
    rc = subprocess.run(train_argv(dalc, DVAE, RESUME + ["--every", "1", "--log", log, "--checkpoint", ckpt,
                                                          "--resume", ckpt]),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    report(rc == 0 and same_bytes(log, ref_log) and same_bytes(ckpt, ref_ckpt),
           "resume: resumed after the last torn write (exit %d): log and final checkpoint byte-identical "
           "to the uninterrupted run's" % rc)
    stale = temp_files(d, os.path.basename(ckpt))
    report(not stale, "resume: the killed writer's temporary files are gone after the next checkpoint (%s)"
           % (", ".join(stale) or "none left"))


# ---- driver ----------------------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        print("usage: train_models.py BUILD_DIR", file=sys.stderr)
        return 2
    dalc = os.path.join(sys.argv[1], "dalc")
    if not os.access(dalc, os.X_OK):
        print("FAIL train_models: %s is not built (make %s)" % (dalc, dalc))
        return 1
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        # (a) in the background: the longest run
        dvae_log, dvae_err = os.path.join(tmp, "dvae.tsv"), os.path.join(tmp, "dvae.err")
        dvae = start(train_argv(dalc, DVAE, [
            "--fn", "loss", "--steps", str(DVAE_STEPS), "--seed", "1", "--data", "shapes",
            "--anneal", "tau=1:0.5", "--set", "beta=0.01", "--every", "none", "--quiet",
            "--log", dvae_log, "--checkpoint", os.path.join(tmp, "dvae.safetensors")]), dvae_err)

        # (b)
        gpt_log, gpt_err = os.path.join(tmp, "gpt.tsv"), os.path.join(tmp, "gpt.err")
        gpt = start(train_argv(dalc, GPT, [
            "--steps", str(GPT_STEPS), "--seed", "1", "--data", gpt_tokens(tmp), "--lr", str(GPT_LR),
            "--every", "none", "--quiet", "--log", gpt_log, "--checkpoint", os.path.join(tmp, "gpt.safetensors")]),
            gpt_err)
        check_decrease("gpt tiny overfits 8 fixed rows (lr %g)" % GPT_LR, gpt_log, gpt.wait(), gpt_err,
                       lambda n, first, last: (n == GPT_STEPS and last < GPT_TARGET,
                                               "want < %g" % GPT_TARGET))

        # (c)
        resume_dir = os.path.join(tmp, "resume")
        os.mkdir(resume_dir)
        resume_checks(dalc, resume_dir)

        check_decrease("dvae tiny on shapes (tau 1 -> 0.5, beta 0.01)", dvae_log, dvae.wait(), dvae_err,
                       lambda n, first, last: (n == DVAE_STEPS and last <= DVAE_DROP * first,
                                               "down %.0f%%, want >= %.0f%%" % (
                                                   100 * (1 - last / first), 100 * DVAE_DROP)))

        # (d) the same on Fashion-MNIST, when Debian's package is there
        if os.path.exists(FASHION):
            fm_log, fm_err = os.path.join(tmp, "fm.tsv"), os.path.join(tmp, "fm.err")
            fm = start(train_argv(dalc, DVAE, [
                "--fn", "loss", "--steps", str(DVAE_STEPS), "--seed", "1", "--data", "fashion-mnist",
                "--lr", "3e-3", "--anneal", "tau=1:0.5", "--set", "beta=0.01", "--every", "none", "--quiet",
                "--log", fm_log, "--checkpoint", os.path.join(tmp, "fm.safetensors")]), fm_err)
            check_decrease("dvae tiny on fashion-mnist (lr 3e-3, tau 1 -> 0.5, beta 0.01)", fm_log, fm.wait(), fm_err,
                           lambda n, first, last: (n == DVAE_STEPS and last <= DVAE_DROP * first,
                                                   "down %.0f%%, want >= %.0f%%" % (
                                                       100 * (1 - last / first), 100 * DVAE_DROP)))
        else:
            print("SKIP dvae tiny on fashion-mnist: %s is not installed" % FASHION)
    print("train_models: %d failed (%.0f s)" % (failures, time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
