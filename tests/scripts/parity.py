"""parity.py BUILD_DIR — models/*.dal run by BUILD_DIR/dalc agree with the
PyTorch reference (tests/torch_ref/dal_torch.py).

For each case: seed torch, build the reference model, write its state_dict
to a safetensors file and random inputs to .npy files in a temporary
directory, run

    BUILD_DIR/dalc run models/X.dal --config C --fn NAME --params p.safetensors
                       --in x=x.npy [--in ...] --out NAME=out.npy

and compare: rel = max|dal - ref| / max|ref| (integer outputs must be equal).
With DAL_PARITY_AOT=1 each model is first built once as a standalone
executable (dalc models/X.dal --config C [--batch N] -o EXE, in a temporary
directory) and every case runs `EXE run --fn NAME ...` instead.
Prints one line per case ("PASS dvae tiny encode rel=3.1e-07") and exits
non-zero if any case fails. Run with /usr/bin/python3.
"""
import atexit
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch_ref"))
import dal_io  # noqa: E402
import dal_torch as dt  # noqa: E402
import selftest  # noqa: E402

TAU, BETA, USAGE = 0.9, 0.1, 0.5
GPT_BENCH_BATCH = 2   # the reference executor is plain C: keep the bench case small


class Case:
    """One dalc run compared with one torch result."""

    def __init__(self, family, config, fn, tol, batch=None):
        self.family, self.config, self.fn, self.tol, self.batch = family, config, fn, tol, batch


AOT = os.environ.get("DAL_PARITY_AOT") == "1"
AOT_EXES = {}  # (family, config, batch) -> the executable built for it


def aot_exe(dalc, family, config, batch):
    """The model as an AOT-built executable, built on first use."""
    key = (family, config, batch)
    if key not in AOT_EXES:
        if not AOT_EXES:
            AOT_EXES["dir"] = tempfile.mkdtemp(prefix="dal-parity-aot-")
            atexit.register(shutil.rmtree, AOT_EXES["dir"], True)
        exe = os.path.join(AOT_EXES["dir"], "%s-%s-%s" % key)
        cmd = [dalc, os.path.join(ROOT, "models", family + ".dal"), "--config", config, "-o", exe]
        proc = subprocess.run(cmd + (["--batch", str(batch)] if batch else []), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True)
        if proc.returncode != 0:
            raise RuntimeError("dalc -o exit %d: %s" % (proc.returncode, proc.stderr.strip()[:300]))
        AOT_EXES[key] = exe
    return AOT_EXES[key]


def run_dalc(dalc, tmp, family, config, fn, params, inputs, batch=None, extra=()):
    """Runs one entry; 'inputs' maps name -> array or number. Returns the
    output array, or raises RuntimeError with dalc's own message."""
    cmd = [dalc, "run", os.path.join(ROOT, "models", family + ".dal"), "--config", config, "--fn", fn]
    if AOT:
        cmd = [aot_exe(dalc, family, config, batch), "run", "--fn", fn]
        batch = None  # built in
    if params is not None:
        path = os.path.join(tmp, "p.safetensors")
        dal_io.save_safetensors(path, params)
        cmd += ["--params", path]
    if batch is not None:
        cmd += ["--batch", str(batch)]
    for name, value in inputs.items():
        path = os.path.join(tmp, name + ".npy")
        dal_io.save_npy(path, value)
        cmd += ["--in", "%s=%s" % (name, path)]
    out = os.path.join(tmp, "out.npy")
    if os.path.exists(out):
        os.remove(out)
    cmd += ["--out", "%s=%s" % (fn, out)] + list(extra)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0 or not os.path.exists(out):
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError("dalc exit %d: %s" % (proc.returncode, " | ".join(msg[:6]) or "no output"))
    return dal_io.load_npy(out)


def dvae_case(cfg, fn, batch):
    """Builds the reference dVAE and the inputs of entry 'fn'; returns
    (state_dict, inputs, expected)."""
    model = dt.DVAE(cfg)
    K, S, n = cfg["K"], cfg["S"], dt.dvae_grid(cfg)
    x = torch.rand(batch, 3, S, S) * 2 - 1
    with torch.no_grad():
        if fn == "encode":
            return model.state_dict(), {"x": x}, model.encode(x)
        if fn == "tokens":
            return model.state_dict(), {"x": x}, model.tokens(x)
        if fn == "decode":
            z = F.softmax(torch.randn(batch, K, n, n) * 2, dim=1)
            return model.state_dict(), {"z": z}, model.decode(z)
        if fn == "decode_tokens":
            t = torch.randint(0, K, (batch, n, n), dtype=torch.int32)
            return model.state_dict(), {"t": t}, model.decode_tokens(t)
        if fn == "loss_given_noise":
            noise = -torch.log(-torch.log(torch.rand(batch, K, n, n).clamp_min(1e-12)))
            inputs = {"x": x, "noise": noise, "tau": np.float32(TAU), "beta": np.float32(BETA)}
            return model.state_dict(), inputs, model.loss_given_noise(x, noise, TAU, BETA)
        if fn == "loss_soft_given_noise":
            noise = -torch.log(-torch.log(torch.rand(batch, K, n, n).clamp_min(1e-12)))
            inputs = {"x": x, "noise": noise, "tau": np.float32(TAU), "beta": np.float32(BETA),
                      "usage": np.float32(USAGE)}
            return model.state_dict(), inputs, model.loss_soft_given_noise(x, noise, TAU, BETA, USAGE)
    raise ValueError("no dvae case " + fn)


def gpt_case(cfg, fn, batch):
    model = dt.GPT(cfg)
    text, image = dt.random_text(cfg, batch), dt.random_image_tokens(cfg, batch)
    inputs = {"text": text, "image": image}
    with torch.no_grad():
        want = model.logits(text, image) if fn == "logits" else model.loss(text, image)
    return model.state_dict(), inputs, want


def compare(got, want):
    """(ok, text) for one output."""
    want = want.detach().numpy() if hasattr(want, "detach") else np.asarray(want)
    if got.shape != want.shape:
        return False, "shape %s, want %s" % (list(got.shape), list(want.shape))
    if want.dtype.kind in "iu":
        if got.dtype != want.dtype:
            return False, "dtype %s, want %s" % (got.dtype, want.dtype)
        wrong = int((got != want).sum())
        return wrong == 0, "exact" if wrong == 0 else "%d of %d differ" % (wrong, want.size)
    if not np.all(np.isfinite(got)):
        return False, "non-finite output"
    rel = float(np.abs(got.astype(np.float64) - want).max() / max(float(np.abs(want).max()), 1e-30))
    return None, rel


def run_case(dalc, case):
    torch.manual_seed(1234)
    if case.family == "dvae":
        cfg = dt.DVAE_CONFIGS[case.config]
        sd, inputs, want = dvae_case(cfg, case.fn, case.batch or cfg["batch"])
    else:
        cfg = dt.GPT_CONFIGS[case.config]
        sd, inputs, want = gpt_case(cfg, case.fn, case.batch or cfg["batch"])
    with tempfile.TemporaryDirectory() as tmp:
        got = run_dalc(dalc, tmp, case.family, case.config, case.fn, sd, inputs, case.batch)
    ok, detail = compare(got, want)
    if ok is None:
        ok, detail = detail <= case.tol, "rel=%.2g" % detail
    return ok, detail


def dvae_loss_is_finite(dalc):
    """The training entry draws its own Gumbel noise: a finite positive scalar."""
    cfg = dt.DVAE_CONFIGS["tiny"]
    torch.manual_seed(99)
    x = torch.rand(cfg["batch"], 3, cfg["S"], cfg["S"]) * 2 - 1
    with tempfile.TemporaryDirectory() as tmp:
        got = run_dalc(dalc, tmp, "dvae", "tiny", "loss", dt.DVAE(cfg).state_dict(),
                       {"x": x, "tau": np.float32(TAU), "beta": np.float32(BETA)}, extra=["--seed", "1"])
    v = float(got.reshape(-1)[0]) if got.size == 1 else float("nan")
    return got.shape == () and math.isfinite(v) and v > 0, "value=%.6g" % v


CASES = [
    Case("dvae", "tiny", "encode", 1e-4),
    Case("dvae", "tiny", "tokens", 0),
    Case("dvae", "tiny", "decode", 1e-4),
    Case("dvae", "tiny", "decode_tokens", 1e-4),
    Case("dvae", "tiny", "loss_given_noise", 1e-4),
    Case("dvae", "tiny", "loss_soft_given_noise", 1e-4),
    Case("gpt", "tiny", "logits", 1e-4),
    Case("gpt", "tiny", "loss", 1e-4),
    Case("gpt", "bench", "logits", 1e-3, batch=GPT_BENCH_BATCH),
    Case("dvae", "small", "encode", 1e-4, batch=2),
    Case("dvae", "small", "decode_tokens", 1e-4, batch=2),
    Case("gpt", "small", "logits", 1e-4, batch=2),
    Case("dvae", "small16", "encode", 1e-4, batch=2),
    Case("dvae", "small16", "decode_tokens", 1e-4, batch=2),
    Case("gpt", "small16", "logits", 1e-4, batch=2),
]


def main():
    if len(sys.argv) != 2:
        print("usage: parity.py BUILD_DIR", file=sys.stderr)
        return 2
    dalc = os.path.join(sys.argv[1], "dalc")
    torch.set_num_threads(2)
    failures = selftest.run()
    print("%s torch_ref selftest" % ("FAIL" if failures else "PASS"))
    if not os.access(dalc, os.X_OK):
        print("FAIL parity: %s is not built (make %s)" % (dalc, dalc))
        return 1
    failed = len(failures)
    for case in CASES:
        name = "%s %s %s" % (case.family, case.config, case.fn)
        try:
            ok, detail = run_case(dalc, case)
        except RuntimeError as e:
            ok, detail = False, str(e)
        print("%s %s %s" % ("PASS" if ok else "FAIL", name, detail))
        failed += not ok
    try:
        ok, detail = dvae_loss_is_finite(dalc)
    except RuntimeError as e:
        ok, detail = False, str(e)
    print("%s dvae tiny loss (gumbel, --seed 1) %s" % ("PASS" if ok else "FAIL", detail))
    failed += not ok
    print("parity%s: %d failed" % (" (AOT executables)" if AOT else "", failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
