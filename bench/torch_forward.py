"""torch_forward.py — the PyTorch side of the dVAE forward benchmark: one
inference entry of tests/torch_ref/dal_torch.py's DVAE timed like dal's
`bench --fn ENTRY`.

    /usr/bin/python3 bench/torch_forward.py [--config paper] [--fn tokens|encode]
        [--steps 3] [--warmup 1] [--max-seconds T] [--wait-policy PASSIVE|ACTIVE|default]
        [--threads 2] [--seed 0]

The model (random weights, PyTorch's default initialisation) runs under
torch.inference_mode on images uniform in [-1, 1] of the config's batch
(paper: one 256x256 image -> a 32x32 grid of tokens); the input is drawn
outside the timed region. Prints one JSON object on stdout with the keys of
torch_bench.py (ms_median, ms_min, ms_max, steps, unit "images", per_step,
per_s, cores_busy, peak_rss_kib: VmHWM of this process, so run one process
per measurement). The OpenMP wait policy is applied before torch is imported.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "torch_ref"))
from bench_proc import add_wait_policy_arg, apply_wait_policy, cpu_seconds, peak_rss_kib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="paper")
    ap.add_argument("--fn", choices=["tokens", "encode"], default="tokens")
    ap.add_argument("--steps", type=int, default=3, help="timed forwards (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up forwards before them (default 1)")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="stop the timed forwards once the run has taken this long (at least one; 0: no limit)")
    add_wait_policy_arg(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps must be >= 1, --warmup >= 0, --threads >= 1")

    apply_wait_policy(args.wait_policy, "torch_forward")
    import torch
    import dal_torch as dt

    if args.config not in dt.DVAE_CONFIGS:
        ap.error("unknown dvae config '%s' (known: %s)" % (args.config, ", ".join(dt.DVAE_CONFIGS)))
    cfg = dt.DVAE_CONFIGS[args.config]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = dt.DVAE(cfg).eval()
    entry = model.tokens if args.fn == "tokens" else model.encode
    B, S = cfg["batch"], cfg["S"]
    gen = torch.Generator().manual_seed(args.seed)

    def forward():
        x = torch.rand(B, 3, S, S, generator=gen) * 2 - 1
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = entry(x)
            ms = (time.perf_counter() - t0) * 1e3
        return ms, out

    start = time.perf_counter()
    for _ in range(args.warmup):
        forward()
    ms = []
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    for _ in range(args.steps):
        t, out = forward()
        ms.append(t)
        if args.max_seconds > 0 and time.perf_counter() - start >= args.max_seconds:
            break
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    median = statistics.median(ms)
    print(json.dumps({
        "bench": "pytorch", "model": "dvae", "config": args.config, "entry": args.fn, "train": False,
        "batch": B, "warmup": args.warmup, "steps": len(ms),
        "ms_median": median, "ms_mean": statistics.fmean(ms), "ms_min": min(ms), "ms_max": max(ms),
        "unit": "images", "per_step": B, "per_s": B * 1e3 / median,
        "cores_busy": cpu / wall if wall > 0 else None, "out_shape": list(out.shape),
        "peak_rss_kib": peak_rss_kib(), "threads": torch.get_num_threads(), "wait_policy": args.wait_policy,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
