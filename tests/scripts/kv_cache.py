#!/usr/bin/env python3
"""kv_cache.py BUILD — the KV-cached sampler against the cache-free path.

For the GPT's tiny and bench configs (bench at batch 2, to stay quick):
  * `sample` with the KV cache (prefill + decode_step) and with --no-cache
    (image_logits on the whole sequence at every position) draw identical
    tokens, greedy and seeded, with and without top-k, and with the
    inverse-CDF sampler;
  * the logits every cached token was drawn from (--logits-out) equal
    image_logits run on the drawn tokens to 1e-5 relative (max-abs
    difference over the max-abs logit);
  * the same seed draws the same tokens on 1 and 2 threads;
  * tiny on the reference executor draws the same tokens as native code.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
DALC = os.path.join(BUILD, "dalc")
failures = []


def run(args, env=None):
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(args)}\n{r.stderr}")
    return r


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def sample(base, tmp, text, flags, tag, env=None):
    tok, log = f"{tmp}/tok-{tag}.npy", f"{tmp}/log-{tag}.npy"
    run(base + ["--", "sample", "--seed", "3", "--in", f"text={text}", "--out", tok, "--logits-out", log] + flags,
        env)
    return np.load(tok), np.load(log)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for cfg, extra, B, Lt, V in [("tiny", [], 4, 8, 72), ("bench", ["--batch", "2"], 2, 32, 1056)]:
            base = [DALC, "run", "models/gpt.dal", "--config", cfg] + extra
            text = f"{tmp}/text-{cfg}.npy"
            np.save(text, np.random.RandomState(5).randint(0, V, (B, Lt)).astype(np.int32))
            for mode in ["--temperature 0", "--sample-seed 7", "--sample-seed 7 --top-k 10",
                         "--sample-seed 7 --sampler cdf"]:
                flags = mode.split()
                tc, lc = sample(base, tmp, text, flags, "cache")
                tn, _ = sample(base, tmp, text, flags + ["--no-cache"], "nocache")
                check(tc.shape == tn.shape and (tc == tn).all(), f"{cfg} {mode}: cached tokens == no-cache tokens")
                m = f"{tmp}/m.npy"
                np.save(m, tc.reshape(B, -1))
                il = f"{tmp}/il.npy"
                run(base + ["--seed", "3", "--fn", "image_logits", "--in", f"text={text}", "--in", f"image={m}",
                            "--out", f"image_logits={il}"])
                ref = np.load(il)
                rel = float(np.abs(ref - lc).max() / np.abs(ref).max())
                check(rel <= 1e-5, f"{cfg} {mode}: decode-step logits vs image_logits rel {rel:.2e} <= 1e-5")
            env1, env2 = dict(os.environ, DAL_THREADS="1"), dict(os.environ, DAL_THREADS="2")
            t1, _ = sample(base, tmp, text, ["--sample-seed", "11"], "t1", env1)
            t2, _ = sample(base, tmp, text, ["--sample-seed", "11"], "t2", env2)
            check((t1 == t2).all(), f"{cfg}: same seed, same tokens on 1 and 2 threads")
            t3, _ = sample(base, tmp, text, ["--sample-seed", "12"], "t3", env2)
            check((t3 != t2).any(), f"{cfg}: another sample seed draws other tokens")
        base = [DALC, "run", "models/gpt.dal", "--config", "tiny"]
        text = f"{tmp}/text-tiny.npy"
        native, _ = sample(base, tmp, text, ["--sample-seed", "7"], "native")
        ref, _ = sample(base, tmp, text, ["--sample-seed", "7"], "ref", dict(os.environ, DAL_BACKEND="ref"))
        check((native == ref).all(), "tiny: the reference executor draws the native code's tokens")
    print(f"kv_cache.py: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
