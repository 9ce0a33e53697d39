"""torch_bench.py — the PyTorch side of dal's benchmarks (MODELS.md section 3).

    /usr/bin/python3 bench/torch_bench.py --model dvae|gpt [--config bench]
        [--steps N] [--warmup W] [--max-seconds T] [--wait-policy PASSIVE|ACTIVE|default]
        [--threads 2] [--adamw foreach|loop]

Times one training step of the reference model of tests/torch_ref/dal_torch.py
(forward, backward and the AdamW update, with MODELS.md's optimizer settings)
and prints one JSON object on stdout, with the same keys as dal's
`bench --json`: ms_median, ms_mean, ms_min, ms_max, unit and per_step (images
for the dVAE: B per step; tokens for the GPT: B x (Lt + g*g), the token
inputs' elements, as dal counts them), per_s (at the median), cores_busy and
peak_rss_kib (VmHWM of this process: run one process per measurement).

The OpenMP wait policy is applied before torch is imported (libgomp reads it
once, when it loads): PyTorch's default spin-waiting makes its threads fight
OpenBLAS's for the two cores. "default" leaves the variable unset.

Inputs are drawn once per step outside the timed region: images uniform in
[-1, 1] (the dVAE's tau and beta as given), text and image tokens from
dal_torch.random_text / random_image_tokens. The dVAE's Gumbel noise is drawn
inside the step, as dal's training step does, and fed to DVAE.loss_given_noise.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "torch_ref"))
from bench_proc import add_wait_policy_arg, apply_wait_policy, cpu_seconds, peak_rss_kib  # noqa: E402




def adamw(torch, params, cfg, hyper, foreach):
    """MODELS.md's AdamW: weight decay on rank >= 2 parameters only (the
    same rule as dal's optimizer pass)."""
    params = list(params)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": hyper["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=hyper["betas"], eps=hyper["eps"], foreach=foreach)


def setup(args, torch, dt):
    """(model, optimizer, make_inputs(step) -> tuple, loss(inputs), unit, per_step, batch)."""
    if args.model == "dvae":
        cfg = dt.DVAE_CONFIGS[args.config]
        if "lr" not in cfg:
            sys.exit("torch_bench: dvae config %s has no learning rate (not trained)" % args.config)
        model = dt.DVAE(cfg)
        opt = adamw(torch, model.parameters(), cfg, dt.DVAE_ADAMW, args.adamw == "foreach")
        B, S = cfg["batch"], cfg["S"]
        gen = torch.Generator().manual_seed(args.seed)

        def make_inputs(step):
            return (torch.rand(B, 3, S, S, generator=gen) * 2 - 1,)

        def loss(inputs):
            # Standard Gumbel noise, drawn inside the step as in dal's. Not
            # dal_torch's DVAE.loss: its noise expression is NaN (the minus
            # binds after .clamp_min), so its step would time NaN arithmetic.
            x = inputs[0]
            u = torch.rand(B, cfg["K"], *model.encode_shape(), generator=gen).clamp_min(1e-20)
            noise = -torch.log((-torch.log(u)).clamp_min(1e-20))
            return model.loss_given_noise(x, noise, args.tau, args.beta)

        return model, opt, make_inputs, loss, "images", B, B
    cfg = dt.GPT_CONFIGS[args.config]
    model = dt.GPT(cfg)
    opt = adamw(torch, model.parameters(), cfg, dt.GPT_ADAMW, args.adamw == "foreach")
    B = cfg["batch"]
    gen = torch.Generator().manual_seed(args.seed)

    def make_inputs(step):
        return dt.random_text(cfg, B, gen), dt.random_image_tokens(cfg, B, gen)

    def loss(inputs):
        return model.loss(*inputs)

    return model, opt, make_inputs, loss, "tokens", B * (cfg["Lt"] + cfg["g"] ** 2), B


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["dvae", "gpt"], required=True)
    ap.add_argument("--config", default="bench")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up steps before them (default 2)")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="stop the timed steps once the run has taken this long (at least one; 0: no limit)")
    add_wait_policy_arg(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--adamw", choices=["foreach", "loop"], default="foreach",
                    help="AdamW's multi-tensor implementation (default, the faster) or its per-tensor loop")
    ap.add_argument("--tau", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps must be >= 1, --warmup >= 0, --threads >= 1")

    apply_wait_policy(args.wait_policy, "torch_bench")
    import torch
    import dal_torch as dt

    configs = dt.DVAE_CONFIGS if args.model == "dvae" else dt.GPT_CONFIGS
    if args.config not in configs:
        ap.error("unknown %s config '%s' (known: %s)" % (args.model, args.config, ", ".join(configs)))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, opt, make_inputs, loss_fn, unit, per_step, batch = setup(args, torch, dt)
    model.train()

    def step(s):
        inputs = make_inputs(s)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(inputs)
        loss.backward()
        opt.step()
        value = loss.item()
        return (time.perf_counter() - t0) * 1e3, value

    start = time.perf_counter()
    for s in range(args.warmup):
        step(s)
    ms, loss = [], math.nan
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    for k in range(args.steps):
        dt_ms, loss = step(args.warmup + k)
        ms.append(dt_ms)
        if args.max_seconds > 0 and time.perf_counter() - start >= args.max_seconds:
            break
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    if not math.isfinite(loss):
        sys.exit("torch_bench: the loss is %g; no timing reported" % loss)
    median = statistics.median(ms)
    out = {
        "bench": "pytorch", "model": args.model, "config": args.config, "entry": "loss", "train": True,
        "batch": batch, "warmup": args.warmup, "steps": len(ms),
        "ms_median": median, "ms_mean": statistics.fmean(ms), "ms_min": min(ms), "ms_max": max(ms),
        "unit": unit, "per_step": per_step, "per_s": per_step * 1e3 / median,
        "cores_busy": cpu / wall if wall > 0 else None, "loss": loss,
        "peak_rss_kib": peak_rss_kib(),
        "threads": torch.get_num_threads(), "wait_policy": args.wait_policy,
        "adamw": args.adamw, "torch": torch.__version__,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
