#!/usr/bin/env python3
"""stage2.py BUILD — DALL-E's stage 2 end to end on the tiny configs.

  * a dVAE trained briefly on shapes initialises models/dalle.dal with
    --init vae=dvae.safetensors; 200 training steps on shapes with captions
    through a BPE tokenizer leave every vae.* tensor bit-identical, the
    checkpoint holds no optimizer moments for vae.*, and the loss falls;
  * the dalle model's tokens entry equals dvae.dal's on the same images,
    and its in-graph tokenisation gives the same loss as loss_tokens on
    those tokens;
  * training from a token cache (tokenize, then --data tokens:FILE with
    loss_tokens) logs the same loss sequence as the in-graph path;
  * the checkpoint is a model file: generate --model draws a captioned PNG
    grid, .npy images and tokens with nothing else given, reproducibly.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
DALC = os.path.join(BUILD, "dalc")
failures = []


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(args)}\n{r.stdout}\n{r.stderr}")
    return r


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        dt = np.float32 if v["dtype"] == "F32" else np.int32
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"])
    return out, head.get("__metadata__", {})


def expect_error(args, fragment, what):
    r = subprocess.run(args, capture_output=True, text=True)
    check(r.returncode == 1 and fragment in r.stderr and "Sanitizer" not in r.stderr,
          f"{what}: exit 1 with '{fragment}'" + ("" if r.returncode == 1 and fragment in r.stderr else
                                                  f" (got {r.returncode}: {r.stderr.strip()[-300:]})"))


def losses(path):
    return [line.split("\t")[1] for line in open(path).read().splitlines()[1:]]


def main():
    with tempfile.TemporaryDirectory() as t:
        dvae, tok, dalle = f"{t}/dvae.safetensors", f"{t}/tok.json", f"{t}/dalle.safetensors"
        run([DALC, "run", "models/dvae.dal", "--config", "tiny", "--", "train", "--steps", "100", "--data", "shapes",
             "--lr", "3e-3", "--set", "beta=0.001", "--anneal", "tau=1:0.0625", "--checkpoint", dvae, "--quiet"])
        run([DALC, "bpe", "train", "--data", "shapes", "--vocab", "64", "-o", tok])
        dalle_run = [DALC, "run", "models/dalle.dal", "--config", "tiny", "--"]
        run(dalle_run + ["train", "--steps", "200", "--data", "shapes", "--tokenizer", tok, "--init",
                         f"vae={dvae}", "--checkpoint", dalle, "--log", f"{t}/loss.tsv", "--quiet"])
        a, _ = safetensors(dvae)
        b, meta = safetensors(dalle)
        params = [k for k in a if not k.startswith("opt.")]
        check(len(params) == 69 and all(a[k].tobytes() == b["vae." + k].tobytes() for k in params),
              f"all {len(params)} vae.* tensors bit-identical after 200 steps")
        check(not [k for k in b if k.startswith("opt.") and ".vae." in k + "."],
              "no optimizer state for vae.* in the checkpoint")
        check(sum(k.startswith("opt.m.gpt.") for k in b) == 33, "optimizer moments for all 33 gpt.* tensors")
        check(not [k for k in b if "cache" in k], "no KV cache (transient state) in the checkpoint")
        check("dal.tokenizer" in meta and meta.get("dal.source_hash", "").startswith("fnv1a64:"),
              "the checkpoint carries the tokenizer and the source hash")
        ls = [float(x) for x in losses(f"{t}/loss.tsv")]
        first, last = np.mean(ls[:10]), np.mean(ls[-10:])
        check(last < 0.6 * first, f"the loss falls: {first:.3f} -> {last:.3f} (mean of the first / last 10 steps)")

        # tokens: dalle's entry = dvae's; in-graph loss = loss_tokens on them
        x, text = f"{t}/x.npy", f"{t}/text.npy"
        run([DALC, "run", "models/dvae.dal", "--config", "tiny", "--", "data", "--data", "shapes:test", "--out", x])
        run([DALC, "run", "models/dvae.dal", "--config", "tiny", "--params", dvae, "--fn", "tokens", "--in", x,
             "--out", f"tokens={t}/tv.npy"])
        run(dalle_run + ["run", "--fn", "tokens", "--params", dalle, "--in", f"x={x}", "--out", f"tokens={t}/td.npy"])
        tv, td = np.load(f"{t}/tv.npy"), np.load(f"{t}/td.npy")
        check(tv.shape == td.shape and (tv == td).all(), "dalle's tokens entry equals dvae.dal's on the same images")
        np.save(f"{t}/img.npy", td.reshape(td.shape[0], -1))
        np.save(text, np.random.RandomState(1).randint(0, 72, (4, 8)).astype(np.int32))
        r1 = run(dalle_run + ["run", "--fn", "loss", "--params", dalle, "--in", f"x={x}", "--in", f"text={text}",
                              "--out", f"loss={t}/l1.npy"])
        r2 = run(dalle_run + ["run", "--fn", "loss_tokens", "--params", dalle, "--in", f"text={text}", "--in",
                              f"image={t}/img.npy", "--out", f"loss_tokens={t}/l2.npy"])
        l1, l2 = np.load(f"{t}/l1.npy"), np.load(f"{t}/l2.npy")
        check(l1.tobytes() == l2.tobytes(), f"in-graph tokens give loss_tokens' loss ({float(l1)} = {float(l2)})")

        # the token cache path logs the same losses
        cache = f"{t}/cache.safetensors"
        run(dalle_run + ["tokenize", "--data", "shapes", "--count", "800", "--init", f"vae={dvae}", "--tokenizer", tok,
                         "--out", cache])
        run(dalle_run + ["train", "--fn", "loss_tokens", "--steps", "200", "--data", f"tokens:{cache}", "--init",
                         f"vae={dvae}", "--tokenizer", tok, "--checkpoint", f"{t}/d2.safetensors", "--log",
                         f"{t}/loss2.tsv", "--quiet"])
        check(losses(f"{t}/loss.tsv") == losses(f"{t}/loss2.tsv"),
              "token cache and in-graph tokenisation: the same 200 losses")

        # generate from the model file alone
        gen = dalle_run + ["generate", "--model", dalle, "a red circle at the top left", "a blue square above a green "
                           "triangle", "--n", "3", "--seed", "5", "--top-k", "20"]
        run(gen + ["--out", f"{t}/grid.png", "--out-npy", f"{t}/img1.npy", "--out-tokens", f"{t}/tok1.npy",
                   "--out-dir", f"{t}/each"])
        run(gen + ["--out-npy", f"{t}/img2.npy"])
        im1, im2, tk = np.load(f"{t}/img1.npy"), np.load(f"{t}/img2.npy"), np.load(f"{t}/tok1.npy")
        check(im1.shape == (6, 3, 16, 16) and im1.dtype == np.float32 and np.abs(im1).max() <= 1.5,
              f"generate --out-npy: f32 {im1.shape} images")
        check(tk.shape == (6, 4, 4) and tk.min() >= 0 and tk.max() < 64, "generate --out-tokens: i32 [6, 4, 4]")
        check(im1.tobytes() == im2.tobytes(), "generate: the same seed gives the same images")
        check(os.path.getsize(f"{t}/grid.png") > 1000 and len(os.listdir(f"{t}/each")) == 6,
              "generate: a PNG grid and one PNG per image")
        # bad model files and arguments
        gpt_ckpt = f"{t}/gpt.safetensors"
        run([DALC, "run", "models/gpt.dal", "--config", "tiny", "--", "train", "--steps", "2", "--data",
             f"tokens:{cache}", "--tokenizer", tok, "--checkpoint", gpt_ckpt, "--quiet"])
        notok = f"{t}/notok.safetensors"
        run(dalle_run + ["train", "--fn", "loss_tokens", "--steps", "1", "--data", f"tokens:{cache}", "--init",
                         f"vae={dvae}", "--checkpoint", notok, "--quiet"])
        missing = f"{t}/missing.safetensors"
        sub = {k: v for k, v in b.items() if k != "gpt.head.bias"}
        head = {k: {"dtype": "F32" if v.dtype == np.float32 else "I32", "shape": list(v.shape)} for k, v in sub.items()}
        off, blobs = 0, []
        for k in sub:
            head[k]["data_offsets"] = [off, off + sub[k].nbytes]
            off += sub[k].nbytes
            blobs.append(sub[k].tobytes())
        head["__metadata__"] = meta
        hb = json.dumps(head).encode()
        open(missing, "wb").write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
        g = dalle_run + ["generate", "--model"]
        expect_error(g + [gpt_ckpt, "a red circle"], "is a model file of models/gpt.dal (config tiny), not of",
                     "generate with another model's file")
        expect_error([DALC, "run", "models/dalle.dal", "--config", "bench", "--", "generate", "--model", dalle, "x"],
                     "(config tiny), not of models/dalle.dal (config bench)", "generate with another config's file")
        expect_error(g + [notok, "a red circle"], "has no tokenizer (metadata dal.tokenizer)",
                     "generate with a file without a tokenizer")
        expect_error(g + [missing, "a red circle"], "gpt.head.bias", "generate with a file missing a tensor")
        expect_error(g + [dalle, "a red circle", "--n", "0"], "--n must be 1", "generate --n 0")
        expect_error(g + [dalle, "a red circle", "--top-k", "0"], "--top-k must be at least 1", "generate --top-k 0")
        expect_error(g + [dalle, "a red circle", "--top-k", "65"], "--top-k 65 is more than the 64",
                     "generate --top-k above K")
        expect_error(g + [dalle, "a red circle", "--temperature", "-1"], "--temperature must be 0",
                     "generate with a negative temperature")
        open(f"{t}/empty.txt", "w").write("\n\n")
        expect_error(g + [dalle, "--captions", f"{t}/empty.txt"], "no captions", "generate with no captions")
        expect_error(g + [dalle, "a red \u00e9circle"], "the tokenizer has never seen the character",
                     "generate with a character the tokenizer never saw")
        r = run(g + [dalle, "a small red circle at the top left of a big blue square", "--n", "1", "--out-npy",
                     f"{t}/long.npy"])
        check("at the top left of a big blue square\" is" in r.stderr and "the model reads the first 8" in r.stderr,
              "generate warns when a caption is cut to Lt, naming it")
        expect_error([DALC, "generate", "--model", f"{t}/x.npy", "x"], "not a safetensors", "dalc generate on a non-model file")
    print(f"stage2.py: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
