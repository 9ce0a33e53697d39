"""torch_sample.py — the PyTorch side of the GPT sampling benchmark (MODELS.md section 3).

    /usr/bin/python3 bench/torch_sample.py [--config bench] [--batch 8] [--no-cache]
        [--warmup 1] [--reps 3] [--max-seconds T] [--wait-policy PASSIVE|ACTIVE|default]
        [--threads 2] [--blas-threads N] [--temperature 1] [--seed 0] [--check]

Generates the g*g image tokens of a batch of random text rows (dal_torch's
random_text, seeded) with the GPT of tests/torch_ref/dal_torch.py (random
weights: matrices and embeddings normal(0, 0.02), biases 0), one position
at a time, each token drawn by Gumbel-max, argmax(logits / T + G) over the K
image logits, G = -log(-log U) with U from a seeded torch.Generator:

  cached (default): the Lt text positions go through the blocks once
      (prefill), then each image position alone, its keys and values written
      into per-layer caches preallocated at [B, H, Lt + g*g - 1, dh];
  --no-cache: at every position the whole sequence so far goes through the
      blocks again (Lt, Lt + 1, ..., Lt + g*g - 1 positions).

Written as fast eager PyTorch: inference_mode, the fused qkv linear (one
matmul per layer), heads batched in one matmul (no per-head loops), the
scale folded into q, the causal mask built once, LayerNorm/GELU/linear from
torch.nn.functional, the head only on the last position and only its K
image rows (the text rows are never drawn). This torch has no
F.scaled_dot_product_attention (1.13); with one, the attention uses it.

Prints one JSON object on stdout with the keys of dal's `sample --bench
--json`: image_tokens (B * g * g), seconds (median over the timed
generations), tokens_per_s, cache, peak_rss_mib (VmHWM of this process: run
one process per measurement); and seconds_all, cores_busy, the settings.
--check instead compares the cached path's logits with dal_torch.GPT.logits
on the finished sequence and the two paths' tokens (same noise), and exits 1
if they differ.

The OpenMP wait policy (and --blas-threads, OpenBLAS's thread count) is
applied before torch is imported, as in torch_bench.py.
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
from bench_proc import add_wait_policy_arg, apply_wait_policy, cpu_seconds, peak_rss_mib  # noqa: E402




class Sampler:
    """The GPT's parameters as plain tensors and the two ways to generate."""

    def __init__(self, torch, F, model, cfg, batch):
        self.torch, self.F = torch, F
        self.cfg, self.B = cfg, batch
        self.Lt, self.g, self.K, self.d, self.H = cfg["Lt"], cfg["g"], cfg["K"], cfg["d"], cfg["H"]
        self.dh = self.d // self.H
        self.N = self.Lt + self.g * self.g - 1          # positions of a full sequence
        p = {k: v.detach() for k, v in model.state_dict().items()}
        self.text_emb, self.text_pos, self.image_emb = p["text_emb.weight"], p["text_pos.weight"], p["image_emb.weight"]
        g, d = self.g, self.d
        self.image_pos = (p["row_emb.weight"][:, None, :] + p["col_emb.weight"][None, :, :]).reshape(g * g, d)
        self.layers = [[p["blocks.%d.%s" % (i, n)] for n in (
            "ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
            "ln2.weight", "ln2.bias", "mlp.fc.weight", "mlp.fc.bias", "mlp.proj.weight", "mlp.proj.bias")]
            for i in range(cfg["L"])]
        # the softmax scale 1/sqrt(dh) folded into q's rows of the qkv linear
        scale = torch.ones(3 * d)
        scale[:d] = 1.0 / math.sqrt(self.dh)
        for layer in self.layers:
            layer[2] = layer[2] * scale[:, None]
            layer[3] = layer[3] * scale
        self.ln_f = (p["ln_f.weight"], p["ln_f.bias"])
        first = cfg["Vt"] + self.Lt                      # the image rows of the joint vocabulary
        self.head_w = p["head.weight"][first:].contiguous()   # [K, d]
        self.head_b = p["head.bias"][first:].contiguous()     # [K]
        # additive causal mask [N, N]: 0 on and below the diagonal, -inf above
        self.mask = torch.full((self.N, self.N), float("-inf")).triu_(1)
        self.sdpa = getattr(F, "scaled_dot_product_attention", None)

    def new_caches(self):
        """Per layer (keys, values), each [B, H, N, dh]."""
        t = self.torch
        shape = (self.B, self.H, self.N, self.dh)
        return [(t.empty(shape), t.empty(shape)) for _ in self.layers]

    def forward(self, x, caches, n0):
        """x [B, m, d]: the embeddings of positions n0 .. n0+m-1, the caches
        holding positions < n0. Writes their keys and values into the caches
        and returns the image logits of the last one, [B, K]."""
        F, t = self.F, self.torch
        B, m, d = x.shape
        H, dh, n = self.H, self.dh, n0 + x.shape[1]
        h = x.reshape(B * m, d)
        for (w1, b1, wqkv, bqkv, wo, bo, w2, b2, wfc, bfc, wp, bp), (kc, vc) in zip(self.layers, caches):
            a = F.layer_norm(h, (d,), w1, b1, 1e-5)
            qkv = F.linear(a, wqkv, bqkv).view(B, m, 3, H, dh)
            q = qkv[:, :, 0].transpose(1, 2)                              # [B,H,m,dh]
            kc[:, :, n0:n].copy_(qkv[:, :, 1].transpose(1, 2))
            vc[:, :, n0:n].copy_(qkv[:, :, 2].transpose(1, 2))
            k, v = kc[:, :, :n], vc[:, :, :n]                             # [B,H,n,dh]
            if self.sdpa is not None:  # it scales by 1/sqrt(dh) itself: undo the folded scale
                y = self.sdpa(q * math.sqrt(dh), k, v, attn_mask=self.mask[n0:n, :n] if m > 1 else None)
            else:
                att = t.matmul(q, k.transpose(2, 3))                      # [B,H,m,n], q already scaled
                if m > 1:
                    att += self.mask[n0:n, :n]
                y = t.matmul(att.softmax(dim=-1), v)                      # [B,H,m,dh]
            h = h + F.linear(y.transpose(1, 2).reshape(B * m, d), wo, bo)  # a new h: x is the caller's
            a = F.layer_norm(h, (d,), w2, b2, 1e-5)
            h += F.linear(F.gelu(F.linear(a, wfc, bfc), approximate="tanh"), wp, bp)
        last = h.view(B, m, d)[:, -1]
        return F.linear(F.layer_norm(last, (d,), *self.ln_f, 1e-5), self.head_w, self.head_b)

    def draw(self, logits, temperature, gen):
        """Gumbel-max: argmax(logits / T + G), G = -log(-log U); [B] int64."""
        t = self.torch
        u = t.rand(logits.shape, generator=gen).clamp_(min=1e-20)
        return t.argmax(logits / temperature - t.log(-t.log(u)), dim=-1)

    def text_embedding(self, text):
        return self.text_emb[text.long()] + self.text_pos                   # [B,Lt,d]

    def generate(self, text, cache, temperature, gen, keep_logits=False):
        """Image tokens [B, g*g] (int64) for text i32 [B, Lt]; the logits of
        each position too when keep_logits ([B, g*g, K])."""
        t = self.torch
        B, Lt, T = self.B, self.Lt, self.g * self.g
        tokens = t.empty(B, T, dtype=t.long)
        seen = [] if keep_logits else None
        caches = self.new_caches()
        text_x = self.text_embedding(text)
        if cache:
            logits = self.forward(text_x, caches, 0)                       # prefill
        for j in range(T):
            if cache and j > 0:
                x = (self.image_emb[tokens[:, j - 1]] + self.image_pos[j - 1]).unsqueeze(1)
                logits = self.forward(x, caches, Lt + j - 1)
            elif not cache:                                                # the whole sequence again
                image_x = self.image_emb[tokens[:, :j]] + self.image_pos[:j]
                logits = self.forward(t.cat([text_x, image_x], dim=1), caches, 0)
            if keep_logits:
                seen.append(logits)
            tokens[:, j] = self.draw(logits, temperature, gen)
        return tokens, (t.stack(seen, dim=1) if keep_logits else None)


def check(torch, sampler, model, text, args):
    """The cached logits against dal_torch.GPT.logits on the generated
    sequence; the uncached tokens against the cached ones (same noise)."""
    gen = torch.Generator().manual_seed(args.seed + 1)
    tokens, logits = sampler.generate(text, True, args.temperature, gen, keep_logits=True)
    gen = torch.Generator().manual_seed(args.seed + 1)
    tokens2, logits2 = sampler.generate(text, False, args.temperature, gen, keep_logits=True)
    Lt, first = sampler.Lt, sampler.cfg["Vt"] + sampler.Lt
    ref = model.logits(text, tokens.to(torch.int32))[:, Lt - 1:, first:]  # [B, g*g, K]
    err = (logits - ref).abs().max().item()
    err2 = (logits2 - ref).abs().max().item()
    same = torch.equal(tokens, tokens2)
    print(json.dumps({"check": True, "config": args.config, "batch": sampler.B, "max_abs_err_cached": err,
                      "max_abs_err_uncached": err2, "same_tokens": same, "distinct_tokens": int(tokens.unique().numel())}))
    return err < 1e-4 and err2 < 1e-4 and same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="bench")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--no-cache", action="store_true", help="the whole sequence so far at every position")
    ap.add_argument("--warmup", type=int, default=1, help="untimed generations first (default 1)")
    ap.add_argument("--reps", type=int, default=3, help="timed generations (default 3; the median is reported)")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="stop the timed generations once the run has taken this long (at least one; 0: no limit)")
    add_wait_policy_arg(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="OPENBLAS_NUM_THREADS for this process (default 0: as inherited, OpenBLAS's own choice)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0, help="parameters, text and noise (default 0)")
    ap.add_argument("--check", action="store_true", help="check the two paths against dal_torch.GPT instead of timing")
    args = ap.parse_args()
    if args.batch < 1 or args.reps < 1 or args.warmup < 0 or args.threads < 1 or not args.temperature > 0:
        ap.error("--batch, --reps and --threads must be >= 1, --warmup >= 0, --temperature > 0")

    apply_wait_policy(args.wait_policy, "torch_sample")
    if args.blas_threads > 0:
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    import torch
    import torch.nn.functional as F
    import dal_torch as dt

    if args.config not in dt.GPT_CONFIGS:
        ap.error("unknown GPT config '%s' (known: %s)" % (args.config, ", ".join(dt.GPT_CONFIGS)))
    cfg = dt.GPT_CONFIGS[args.config]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = dt.GPT(cfg).eval()
    text = dt.random_text(cfg, args.batch, torch.Generator().manual_seed(args.seed))
    sampler = Sampler(torch, F, model, cfg, args.batch)
    cache = not args.no_cache

    with torch.inference_mode():
        if args.check:
            sys.exit(0 if check(torch, sampler, model, text, args) else 1)
        gen = torch.Generator().manual_seed(args.seed)
        for _ in range(args.warmup):
            sampler.generate(text, cache, args.temperature, gen)
        seconds = []
        start = time.perf_counter()
        wall0, cpu0 = start, cpu_seconds()
        for _ in range(args.reps):
            t0 = time.perf_counter()
            tokens, _ = sampler.generate(text, cache, args.temperature, gen)
            seconds.append(time.perf_counter() - t0)
            if args.max_seconds > 0 and time.perf_counter() - start >= args.max_seconds:
                break
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    n_tokens = args.batch * cfg["g"] ** 2
    median = statistics.median(seconds)
    print(json.dumps({
        "bench": "pytorch-sample", "config": args.config, "batch": args.batch, "text_tokens": cfg["Lt"],
        "image_tokens": n_tokens, "seconds": median, "tokens_per_s": n_tokens / median, "cache": cache,
        "peak_rss_mib": peak_rss_mib(), "seconds_all": seconds, "warmup": args.warmup, "reps": len(seconds),
        "cores_busy": cpu / wall if wall > 0 else None, "temperature": args.temperature,
        "distinct_tokens": int(tokens.unique().numel()), "threads": torch.get_num_threads(),
        "wait_policy": args.wait_policy, "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"), "sdpa": sampler.sdpa is not None, "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
