"""grad_parity.py BUILD_DIR — whole-model gradients and one AdamW step of
models/*.dal, computed by BUILD_DIR/dalc on the reference executor, agree
with PyTorch autograd and torch.optim.AdamW on the project's reference
(tests/torch_ref/dal_torch.py). Issue 3's acceptance:

  grad   dalc run models/X.dal --config C --fn LOSS --params p.safetensors
              --in ... --grad-out g.safetensors
         gives d loss / d param for every parameter, under its own name; each
         tensor must match torch's .grad to 1e-3 relative (max-abs difference
         over the reference's max-abs; an all-zero reference gradient must come
         out below 1e-7 in absolute value). The loss dalc prints must match
         torch's to 1e-4 relative.

  adamw  dalc run models/X.dal --config C -- run --fn LOSS --params p.safetensors
              --in ... --save-state s.safetensors
         runs exactly one training step (forward, backward, AdamW with the
         model's lr, betas, eps and weight decay; the GPT decays rank >= 2
         params only, and so does the torch side's param grouping). Two checks:
         (same grad) torch.optim.AdamW stepping from the same parameters with
           dalc's gradient (from the grad run) gives the same parameters to
           1e-5 relative (over the parameter's max-abs) and the same update
           p1 - p0 to 1e-4 relative beyond one float32 ulp of p1; opt.m.*,
           opt.v.* equal torch's exp_avg, exp_avg_sq to 1e-5 relative and
           opt.step is 1. (dalc's bias corrections 1 - beta^t carry no f32
           cancellation: passes/adamw.c keeps them as geometric sums.)
         (own grad) torch's whole step (its own gradient, then AdamW) gives the
           same parameters to 1e-5 relative, except where the two gradients'
           float32 difference alone explains more than a tenth of that: the
           first step moves a weight by lr * g / (|g| + eps), so for |g| near
           eps (1e-8) a difference of 1e-9 in g (1e-6 of the tensor's largest
           gradient) changes the weight's step by a large part of lr. Those
           elements are counted, and the unrestricted worst is printed.

  straight-through  the dVAE with beta = 0: the encoder's only path to the
         loss is through the straight-through one-hot. Its forward loss must be
         the hard path's (torch's, not the soft decode's), and the encoder
         parameters (enc.conv_out.weight asserted by name) must get a non-zero
         gradient equal to the soft path's in PyTorch.

  soft relaxation  loss_soft_given_noise (the decoder sees the softmax,
         beta's per-cell KL and the codebook-usage KL of the average code
         distribution): loss and every parameter's gradient as above.

Cases: dVAE tiny (batch 4) and bench (batch 1: the reference executor takes
about 10 s per bench image for forward and backward), GPT tiny (batch 4) and
bench (batch 2). The dalc runs go two at a time (the machine has 2 cores):
about 57 s of CPU time in all, most of it the dVAE bench runs. Prints one line per case and check with its worst parameter, exits non-zero
on any failure. Run with /usr/bin/python3.
"""
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch_ref"))
import dal_io  # noqa: E402
import dal_torch as dt  # noqa: E402

GRAD_TOL = 1e-3          # per tensor: max|dal - torch| / max|torch|
ZERO_GRAD_ABS = 1e-7     # an all-zero reference gradient: dal's max-abs below this
LOSS_TOL = 1e-4
PARAM_TOL = 1e-5         # parameters after one step, over the parameter's max-abs
UPDATE_TOL = 1e-4        # the step p1 - p0 beyond 1 ulp of p1, over its max-abs (same gradient)
MOMENT_TOL = 1e-5


class Case:
    """One model configuration: a grad run and (if 'step') a one-step run."""

    def __init__(self, family, config, batch, tau=0.9, beta=0.1, step=True, st=False, seed=1234, usage=None):
        self.family, self.config, self.batch = family, config, batch
        self.tau, self.beta, self.step, self.st, self.seed = tau, beta, step, st, seed
        self.usage = usage  # not None: the soft relaxation with the codebook-usage term
        self.name = "%s %s" % (family, config) + (" straight-through" if st else "") + \
            (" soft relaxation" if usage is not None else "")
        self.fn = ("loss_soft_given_noise" if usage is not None else "loss_given_noise") if family == "dvae" else "loss"


CASES = [
    Case("dvae", "bench", 1),   # the longest dalc runs first, so two run side by side
    Case("gpt", "bench", 2),
    Case("dvae", "tiny", 4),
    Case("gpt", "tiny", 4),
    # beta 0: no KL term, so the encoder hears of the loss only through the one-hot
    Case("dvae", "tiny", 4, tau=0.5, beta=0.0, step=False, st=True, seed=77),
    Case("dvae", "tiny", 4, tau=0.3, beta=0.01, step=False, seed=78, usage=0.5),
]


# ---- the reference side --------------------------------------------------------------

def build(case):
    """Seeds torch and returns (model, inputs name -> array/number, loss closure)."""
    torch.manual_seed(case.seed)
    if case.family == "dvae":
        cfg = dt.DVAE_CONFIGS[case.config]
        model = dt.DVAE(cfg)
        K, S, n = cfg["K"], cfg["S"], dt.dvae_grid(cfg)
        x = torch.rand(case.batch, 3, S, S) * 2 - 1
        noise = -torch.log(-torch.log(torch.rand(case.batch, K, n, n).clamp_min(1e-12)))
        inputs = {"x": x, "noise": noise, "tau": np.float32(case.tau), "beta": np.float32(case.beta)}
        if case.usage is not None:
            inputs["usage"] = np.float32(case.usage)
            return model, inputs, lambda: model.loss_soft_given_noise(x, noise, case.tau, case.beta, case.usage)
        return model, inputs, lambda: model.loss_given_noise(x, noise, case.tau, case.beta)
    cfg = dt.GPT_CONFIGS[case.config]
    model = dt.GPT(cfg)
    text, image = dt.random_text(cfg, case.batch), dt.random_image_tokens(cfg, case.batch)
    return model, {"text": text, "image": image}, lambda: model.loss(text, image)


def adamw(case, model):
    """torch.optim.AdamW with the model's settings (MODELS.md, dal_torch) and
    dalc's grouping: weight decay on rank >= 2 parameters only."""
    cfg, hyper = ((dt.DVAE_CONFIGS, dt.DVAE_ADAMW) if case.family == "dvae"
                  else (dt.GPT_CONFIGS, dt.GPT_ADAMW))
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": hyper["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg[case.config]["lr"], betas=hyper["betas"], eps=hyper["eps"])


def reference(case, model, loss_fn):
    """Torch's loss, gradients and whole step: (loss, p0, grads, p1_own)."""
    p0 = {k: p.detach().clone() for k, p in model.named_parameters()}
    loss = loss_fn()
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    p1 = None
    if case.step:
        adamw(case, model).step()
        p1 = {k: p.detach().clone() for k, p in model.named_parameters()}
    return float(loss), p0, grads, p1


def step_with(case, model, p0, grads):
    """One torch AdamW step from p0 with the given gradients: (p1, exp_avg, exp_avg_sq)."""
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(p0[k])
            p.grad = torch.from_numpy(np.array(grads[k], dtype=np.float32))
    opt = adamw(case, model)
    opt.step()
    named = list(model.named_parameters())
    return ({k: p.detach().clone() for k, p in named},
            {k: opt.state[p]["exp_avg"].clone() for k, p in named},
            {k: opt.state[p]["exp_avg_sq"].clone() for k, p in named})


def soft_forward_loss(case, model, inputs):
    """The dVAE loss with the soft relaxation decoded in the forward pass too
    (what the straight-through rule must NOT compute)."""
    with torch.no_grad():
        x, noise = inputs["x"], inputs["noise"]
        logits = model.encode(x)
        soft = F.softmax((logits + noise) / case.tau, dim=1)
        return float(F.mse_loss(model.decode(soft), x) + case.beta * dt.kl_to_uniform(logits).mean())


# ---- the dalc side ---------------------------------------------------------------------

def commands(dalc, case, d):
    """The dalc runs of 'case' on the files prepare() wrote to directory d:
    {"grad": argv, "step": argv}."""
    base = [dalc, "run", os.path.join(ROOT, "models", case.family + ".dal"),
            "--config", case.config, "--batch", str(case.batch)]
    ins = []
    for name in input_names(case):
        ins += ["--in", "%s=%s" % (name, os.path.join(d, name + ".npy"))]
    params = os.path.join(d, "p.safetensors")
    cmds = {"grad": base + ["--fn", case.fn, "--params", params] + ins
            + ["--grad-out", os.path.join(d, "g.safetensors")]}
    if case.step:
        cmds["step"] = base + ["--", "run", "--fn", case.fn, "--params", params] + ins \
            + ["--save-state", os.path.join(d, "s.safetensors")]
    return cmds


def input_names(case):
    if case.family != "dvae":
        return ["text", "image"]
    return ["x", "noise", "tau", "beta"] + (["usage"] if case.usage is not None else [])


def prepare(case, d, model, inputs):
    dal_io.save_safetensors(os.path.join(d, "p.safetensors"), model.state_dict())
    for name, value in inputs.items():
        dal_io.save_npy(os.path.join(d, name + ".npy"), value)


def run(argv):
    """(returncode, stdout, stderr) of one dalc run."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return proc.returncode, proc.stdout, proc.stderr


def dalc_error(what, result):
    rc, out, err = result
    msg = (err or out).strip().splitlines()
    return "%s: dalc exit %d: %s" % (what, rc, " | ".join(msg[-4:]) or "no output")


def printed_loss(fn, stdout):
    """The loss 'dalc run' prints as "FN: f32 = V", or None."""
    m = re.search(r"^%s: f32 = (\S+)$" % re.escape(fn), stdout, re.M)
    return float(m.group(1)) if m else None


# ---- comparisons -----------------------------------------------------------------------

def rel(got, want):
    """max|got - want| / max|want| in float64 (want all zero: max|got|)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = float(np.abs(want).max()) if want.size else 0.0
    diff = float(np.abs(got - want).max()) if want.size else 0.0
    return diff / scale if scale > 0 else diff


class Report:
    """Worst value and its parameter over a set of tensors."""

    def __init__(self):
        self.worst, self.where, self.errors, self.count = 0.0, "-", [], 0

    def add(self, name, value, tol):
        self.count += 1
        if not np.isfinite(value) or value > tol:
            self.errors.append("%s %.3g > %g" % (name, value, tol))
        if not np.isfinite(value) or value > self.worst:
            self.worst, self.where = value, name
        elif self.where == "-":
            self.where = name

    def line(self, label, what):
        ok = not self.errors
        text = "%s %s %s max rel %.2g (worst %s)" % ("PASS" if ok else "FAIL", label, what, self.worst, self.where)
        if self.errors:
            text += ": " + "; ".join(self.errors[:4]) + (" ..." if len(self.errors) > 4 else "")
        return ok, text


def check_names(label, have, want):
    """(ok, line or None): a file must hold exactly the expected names and shapes."""
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    shapes = [k for k in want if k in have and tuple(have[k].shape) != tuple(want[k].shape)]
    if not (missing or extra or shapes):
        return True, None
    return False, "FAIL %s: missing %s, unexpected %s, wrong shape %s" % (label, missing[:4], extra[:4], shapes[:4])


def check_grad(case, ref_loss, ref_grads, result, d):
    """Lines for the gradient comparison; returns (failures, lines, dalc grads or None)."""
    label = case.name
    if result[0] != 0:
        return 1, ["FAIL %s grad %s" % (label, dalc_error("--grad-out", result))], None
    try:
        got = dal_io.load_safetensors(os.path.join(d, "g.safetensors"))
    except (OSError, ValueError) as e:
        return 1, ["FAIL %s grad: %s" % (label, e)], None
    ok, line = check_names(label + " grad file", got, {k: v.numpy() for k, v in ref_grads.items()})
    if not ok:
        return 1, [line], None
    lines, failed = [], 0
    loss = printed_loss(case.fn, result[1])
    loss_rel = abs(loss - ref_loss) / abs(ref_loss) if loss is not None else float("inf")
    loss_ok = loss_rel <= LOSS_TOL
    failed += not loss_ok
    lines.append("%s %s loss dalc %.9g torch %.9g rel %.2g" % ("PASS" if loss_ok else "FAIL", label,
                                                                 loss if loss is not None else float("nan"),
                                                                 ref_loss, loss_rel))
    rep, zeros = Report(), Report()
    for name, want in ref_grads.items():
        want = want.numpy()
        if float(np.abs(want).max()) == 0.0:
            zeros.add(name, float(np.abs(got[name]).max()), ZERO_GRAD_ABS)
        else:
            rep.add(name, rel(got[name], want), GRAD_TOL)
    ok, line = rep.line(label, "grad %d params" % len(ref_grads))
    if zeros.count:
        zok, zline = zeros.line(label, "all-zero reference gradients")
        ok, line = ok and zok, line + "; " + zline.replace("max rel", "dalc max-abs")
    failed += not ok
    lines.append(line)
    if case.family == "dvae":
        # the straight-through rule at work: a named encoder parameter gets a gradient
        name = "enc.conv_out.weight"
        g, w = got[name], ref_grads[name].numpy()
        r = rel(g, w)
        ok = float(np.abs(w).max()) > 1e-6 and float(np.abs(g).max()) > 0 and r <= GRAD_TOL
        failed += not ok
        lines.append("%s %s %s gradient max-abs dalc %.3g torch %.3g rel %.2g" % (
            "PASS" if ok else "FAIL", label, name, float(np.abs(g).max()), float(np.abs(w).max()), r))
    return failed, lines, got


def check_straight_through(case, model, inputs, ref_loss, dal_grads):
    """With beta 0 the encoder reaches the loss only through the one-hot:
    every enc.* parameter must have a non-zero gradient (the values were
    compared with torch's soft-path gradient in check_grad), and the forward
    loss (equal to torch's hard-path loss, also checked there) must differ
    clearly from the loss of decoding the soft relaxation."""
    enc = [k for k in dal_grads if k.startswith("enc.")]
    zero = [k for k in enc if float(np.abs(dal_grads[k]).max()) == 0.0]
    ok = bool(enc) and not zero
    lines = ["%s %s %d of %d encoder params get a non-zero gradient through the one-hot%s" % (
        "PASS" if ok else "FAIL", case.name, len(enc) - len(zero), len(enc), (": zero " + ", ".join(zero[:4])) if zero else "")]
    soft = soft_forward_loss(case, model, inputs)
    gap = abs(soft - ref_loss) / abs(ref_loss)
    ok2 = gap > 10 * LOSS_TOL
    lines.append("%s %s forward is the hard one-hot: the soft-decode loss %.6g differs by rel %.2g" % (
        "PASS" if ok2 else "FAIL", case.name, soft, gap))
    return int(not ok) + int(not ok2), lines


def check_step(case, model, p0, ref_grads, dal_grads, own_p1, result, d):
    """Lines for the AdamW comparisons; returns (failures, lines)."""
    label = case.name
    if result[0] != 0:
        return 1, ["FAIL %s adamw %s" % (label, dalc_error("-- run --save-state", result))]
    try:
        state = dal_io.load_safetensors(os.path.join(d, "s.safetensors"))
    except (OSError, ValueError) as e:
        return 1, ["FAIL %s adamw: %s" % (label, e)]
    names = [k for k, _ in model.named_parameters()]
    want = {k: p0[k].numpy() for k in names}
    want.update({"opt.m." + k: p0[k].numpy() for k in names})
    want.update({"opt.v." + k: p0[k].numpy() for k in names})
    for k in ("opt.step", "opt.bc1_sum", "opt.bc2_sum"):
        want[k] = np.zeros((), np.float32)
    ok, line = check_names(label + " state file", state, want)
    if not ok:
        return 1, [line]
    lines, failed = [], 0
    step = float(state["opt.step"])
    if step != 1.0:
        failed += 1
        lines.append("FAIL %s adamw: opt.step is %g after one step" % (label, step))
    if dal_grads is not None:
        p1, m, v = step_with(case, model, p0, dal_grads)
        params, update, moments = Report(), Report(), Report()
        for k in names:
            params.add(k, rel(state[k], p1[k].numpy()), PARAM_TOL)
            update.add(k, update_rel(state[k], p1[k].numpy(), p0[k].numpy()), UPDATE_TOL)
            moments.add("opt.m." + k, rel(state["opt.m." + k], m[k].numpy()), MOMENT_TOL)
            moments.add("opt.v." + k, rel(state["opt.v." + k], v[k].numpy()), MOMENT_TOL)
        for rep, what in ((params, "adamw (same grad) params"),
                          (update, "adamw (same grad) update p1-p0 (beyond 1 ulp)"),
                          (moments, "adamw (same grad) moments")):
            ok, line = rep.line(label, what)
            failed += not ok
            lines.append(line)
        n, line = check_own_step(case, model, state, ref_grads, dal_grads, own_p1)
        failed += n
        lines.append(line)
    return failed, lines


def update_rel(got, want, p0):
    """How far the step got - p0 is from want - p0, beyond one float32
    rounding of the parameter (a norm weight near 1 cannot move by less than
    its ulp, 1.2e-7, which is 1e-4 of a 1e-3 step), over the step's max-abs."""
    got, want, p0 = (np.asarray(a, np.float64) for a in (got, want, p0))
    excess = np.maximum(np.abs(got - want) - np.spacing(np.abs(want).astype(np.float32)), 0.0)
    scale = float(np.abs(want - p0).max())
    return float(excess.max()) / scale if scale > 0 else float(excess.max())


def first_step(g, eps):
    """AdamW's first step direction m^/(sqrt(v^) + eps) = g / (|g| + eps), in float64."""
    g = np.asarray(g, np.float64)
    return g / (np.abs(g) + eps)


def check_own_step(case, model, state, ref_grads, dal_grads, own_p1):
    """(failures, line): dalc's step against torch's whole step from its own
    gradient. The first step moves a weight by lr * g / (|g| + eps), so where
    |g| is near eps the float32 difference between the two gradients moves
    that weight's step by a large part of lr: elements where it explains
    more than a tenth of the tolerance are left out (and counted)."""
    opt = adamw(case, model)
    lr, eps = opt.defaults["lr"], opt.defaults["eps"]
    own, total = Report(), Report()
    excluded, count = 0, 0
    for k, _ in model.named_parameters():
        want = own_p1[k].numpy().astype(np.float64)
        diff = np.abs(state[k].astype(np.float64) - want)
        scale = max(float(np.abs(want).max()), 1e-30)
        total.add(k, float(diff.max()) / scale, float("inf"))
        explained = lr * np.abs(first_step(dal_grads[k], eps) - first_step(ref_grads[k].numpy(), eps))
        mask = explained <= 0.1 * PARAM_TOL * scale
        excluded += int((~mask).sum())
        count += diff.size
        own.add(k, float(diff[mask].max()) / scale if mask.any() else 0.0, PARAM_TOL)
    ok, line = own.line(case.name, "adamw (own grad) params")
    return int(not ok), "%s; left out %d of %d weights, over all %.2g (%s)" % (
        line, excluded, count, total.worst, total.where)


# ---- driver ----------------------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        print("usage: grad_parity.py BUILD_DIR", file=sys.stderr)
        return 2
    dalc = os.path.join(sys.argv[1], "dalc")
    if not os.access(dalc, os.X_OK):
        print("FAIL grad_parity: %s is not built (make %s)" % (dalc, dalc))
        return 1
    torch.set_num_threads(1)  # the two dalc runs have the cores
    start = time.time()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(2) as pool:
        work = []
        for i, case in enumerate(CASES):
            d = os.path.join(tmp, str(i))
            os.mkdir(d)
            model, inputs, loss_fn = build(case)
            prepare(case, d, model, inputs)
            futures = {k: pool.submit(run, argv) for k, argv in commands(dalc, case, d).items()}
            work.append((case, d, model, inputs, loss_fn, futures))
        for case, d, model, inputs, loss_fn, futures in work:
            ref_loss, p0, grads, own_p1 = reference(case, model, loss_fn)
            n, lines, dal_grads = check_grad(case, ref_loss, grads, futures["grad"].result(), d)
            failed += n
            if case.st and dal_grads is not None:
                n, more = check_straight_through(case, model, inputs, ref_loss, dal_grads)
                failed += n
                lines += more
            if case.step:
                n, more = check_step(case, model, p0, grads, dal_grads, own_p1, futures["step"].result(), d)
                failed += n
                lines += more
            for line in lines:
                print(line, flush=True)
    print("grad_parity: %d failed (%.0f s)" % (failed, time.time() - start))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
