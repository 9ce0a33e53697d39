#!/usr/bin/env python3
"""eval.py BUILD — `eval dvae|gpt|classify` on the real models (tiny
configs, the classifier's s16), against answers computed here:

  * GPT tiny with every parameter zero has uniform logits: held-out image
    CE = log K, and log V over the joint vocabulary and for the text
    (gpt.dal on npy rows; dalle.dal on shapes:test images through its
    tokens entry and a tokenizer, its GPT zero, its dVAE random);
  * dVAE tiny, random parameters: the MSE, PSNR and codebook figures equal
    numpy's on `run --fn tokens` / `run --fn decode_tokens` of the same
    images; dalle.dal with those vae.* parameters gives the same figures;
  * a dVAE whose encoder's last conv is zero but for bias 1 on code 3
    uses one code: perplexity 1, usage 1/K;
  * the classifier (s16, random parameters) on .npy images: accuracy and
    per-class counts equal numpy's on `run --fn predict`, which is the
    argmax of `run --fn logits`; trained 100 steps on those 24 images
    (npy:x=...,label=...) it reads all of them (labels given as captions).
Run with /usr/bin/python3.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch_ref"))
import dal_io  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
DALC = os.path.join(BUILD, "dalc")
failures = []


def run(args):
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(args)}\n{r.stdout}\n{r.stderr}")
    return r


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def close(a, b, tol):
    return a is not None and b is not None and abs(a - b) <= tol


def model(name, config, batch=None):
    return [DALC, "run", f"models/{name}.dal", "--config", config] + (["--batch", str(batch)] if batch else [])


def evaluate(name, config, args):
    return json.loads(run(model(name, config) + ["--", "eval"] + args + ["--json"]).stdout)


def main():
    t = tempfile.mkdtemp(prefix="dal_eval_")
    # ---- GPT: uniform logits ----
    gp = f"{t}/gpt.safetensors"
    rng = np.random.default_rng(0)
    Lt, Vt, g, K = 8, 64, 4, 64
    V = Vt + Lt + K
    text = np.full((10, Lt), 0, np.int32)
    for r in range(10):
        n = 2 + r % 5
        text[r, :n] = rng.integers(0, Vt, n)
        text[r, n:] = Vt + np.arange(n, Lt)
    image = rng.integers(0, K, (10, g * g)).astype(np.int32)
    np.save(f"{t}/text.npy", text)
    np.save(f"{t}/image.npy", image)
    np.save(f"{t}/text4.npy", text[:4])
    np.save(f"{t}/image4.npy", image[:4])
    # every parameter of gpt.dal tiny, zero (names and shapes from a saved init)
    run(model("gpt", "tiny") + ["--fn", "logits", "--save-params", gp, "--in", f"text={t}/text4.npy",
                                "--in", f"image={t}/image4.npy", "--out", f"logits={t}/l.npy"])
    zeros = {k: np.zeros_like(v) for k, v in dal_io.load_safetensors(gp).items()}
    zp = f"{t}/gpt_zero.safetensors"
    dal_io.save_safetensors(zp, zeros)
    j = evaluate("gpt", "tiny", ["gpt", "--data", f"npy:text={t}/text.npy,image={t}/image.npy", "--count", "10",
                                 "--params", zp, "--train-data", f"npy:image={t}/image.npy", "--train-count", "10"])
    check(close(j["image_ce"], math.log(K), 1e-5), f"zero GPT: image CE {j['image_ce']:.6f} = log K {math.log(K):.6f}")
    check(close(j["image_ce_joint"], math.log(V), 1e-5), f"zero GPT: joint image CE {j['image_ce_joint']:.6f} = log V")
    check(close(j["text_ce"], math.log(V), 1e-5), f"zero GPT: text CE {j['text_ce']:.6f} = log V")
    counts = np.bincount(image.ravel(), minlength=K) / image.size
    h = -sum(p * math.log(p) for p in counts if p > 0)
    check(close(j["train_unigram_entropy"], h, 1e-9) and close(j["unigram_entropy"], h, 1e-9),
          f"unigram entropy of the tokens {j['unigram_entropy']:.6f} = numpy's {h:.6f}")
    check(j["count"] == 10 and j["caption_tokens"] == int(sum((text[:, 1:] < Vt).ravel())),
          "10 examples, the caption targets counted")

    # ---- dVAE: figures against numpy ----
    dp = f"{t}/dvae.safetensors"
    n = 20
    run(model("dvae", "tiny", n) + ["--", "data", "--data", "shapes:test", "--batch", str(n), "--out", f"{t}/x.npy"])
    # every parameter (the training entry has them all), from the seed's initialisers
    run(model("dvae", "tiny", n) + ["--fn", "loss", "--seed", "3", "--save-params", dp, "--in", f"x={t}/x.npy",
                                    "--in", "tau=1", "--in", "beta=0"])
    run(model("dvae", "tiny", n) + ["--fn", "tokens", "--params", dp, "--in", f"x={t}/x.npy",
                                    "--out", f"tokens={t}/tok.npy"])
    run(model("dvae", "tiny", n) + ["--fn", "decode_tokens", "--params", dp, "--in", f"t={t}/tok.npy",
                                    "--out", f"decode_tokens={t}/rec.npy"])
    x, tok, rec = np.load(f"{t}/x.npy"), np.load(f"{t}/tok.npy"), np.load(f"{t}/rec.npy")
    x01, r01 = (x.astype(np.float64) + 1) / 2, (np.clip(rec.astype(np.float64), -1, 1) + 1) / 2
    mse = float(np.mean((r01 - x01) ** 2))
    base = float(np.mean(np.var(x01, axis=0)))
    hist = np.bincount(tok.ravel(), minlength=K) / tok.size
    perp = math.exp(-sum(p * math.log(p) for p in hist if p > 0))
    j = evaluate("dvae", "tiny", ["dvae", "--data", "shapes:test", "--count", str(n), "--params", dp])
    check(close(j["mse"], mse, 1e-6 * mse) and close(j["psnr_db"], 10 * math.log10(1 / mse), 1e-4),
          f"dVAE MSE {j['mse']:.6f} / PSNR {j['psnr_db']:.3f} dB = numpy's on run --fn tokens/decode_tokens")
    check(close(j["baseline_mse"], base, 1e-9), f"mean-image baseline {j['baseline_mse']:.6f} = numpy's {base:.6f}")
    check(close(j["perplexity"], perp, 1e-9) and j["codes_used"] == int((hist > 0).sum()) and j["codes"] == K,
          f"perplexity {j['perplexity']:.4f}, {j['codes_used']} of {K} codes used = numpy's")
    # the same vae.* parameters inside dalle.dal: the same figures
    d = evaluate("dalle", "tiny", ["dvae", "--data", "shapes:test", "--count", str(n), "--init", f"vae={dp}"])
    check(d["codes"] == K and close(d["mse"], j["mse"], 1e-9) and close(d["perplexity"], j["perplexity"], 1e-9),
          "dalle.dal (K from vae.codebook.weight) gives dvae.dal's figures")
    # one code: the encoder's output conv zero, bias 1 on code 3
    one = dal_io.load_safetensors(dp)
    one["enc.conv_out.weight"][:] = 0
    one["enc.conv_out.bias"][:] = 0
    one["enc.conv_out.bias"][3] = 1
    op = f"{t}/one.safetensors"
    dal_io.save_safetensors(op, one)
    j = evaluate("dvae", "tiny", ["dvae", "--data", "shapes:test", "--count", "8", "--params", op])
    check(j["perplexity"] == 1.0 and j["codes_used"] == 1 and close(j["usage"], 1 / K, 1e-12),
          f"one-code dVAE: perplexity {j['perplexity']}, usage {j['usage']}")

    # ---- dalle.dal: GPT zero, images through its tokens entry ----
    run([DALC, "bpe", "train", "--data", "shapes", "--vocab", str(Vt), "-o", f"{t}/tok.json"])
    zg = f"{t}/gpt_zero_only.safetensors"
    dal_io.save_safetensors(zg, zeros)
    j = evaluate("dalle", "tiny", ["gpt", "--data", "shapes:test", "--count", "6", "--tokenizer", f"{t}/tok.json",
                                   "--init", f"vae={dp}", "--init", f"gpt={zg}"])
    check(close(j["image_ce"], math.log(K), 1e-5) and close(j["text_ce"], math.log(V), 1e-5) and j["count"] == 6,
          f"dalle.dal, zero GPT on shapes:test images: image CE {j['image_ce']:.6f} = log K, text CE = log V")

    # ---- classifier: accuracy against numpy ----
    m = 24
    out = run(model("classifier", "s16", m) + ["--", "data", "--data", "fashion-mnist:test", "--batch", str(m),
                                               "--out", f"{t}/fx.npy"]).stdout
    caps = ["a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat", "a sandal", "a shirt", "a sneaker",
            "a bag", "an ankle boot"]
    labels = np.array([caps.index(line.split("\t")[1]) for line in out.splitlines() if "\t" in line], np.int32)
    np.save(f"{t}/fy.npy", labels)
    cp = f"{t}/cls.safetensors"
    run(model("classifier", "s16", m) + ["--fn", "predict", "--seed", "5", "--save-params", cp, "--in",
                                         f"x={t}/fx.npy", "--out", f"predict={t}/pred.npy"])
    run(model("classifier", "s16", m) + ["--fn", "logits", "--params", cp, "--in", f"x={t}/fx.npy",
                                         "--out", f"logits={t}/lg.npy"])
    pred, lg = np.load(f"{t}/pred.npy"), np.load(f"{t}/lg.npy")
    check(len(labels) == m and (pred == lg.argmax(axis=1)).all(), "predict is the argmax of logits")
    j = evaluate("classifier", "s16", ["classify", "--images", f"{t}/fx.npy", "--labels", f"{t}/fy.npy",
                                       "--params", cp])
    acc = float((pred == labels).mean())
    check(j["count"] == m and close(j["accuracy"], acc, 1e-12) and
          j["per_class_count"] == [float(c) for c in np.bincount(labels, minlength=10)],
          f"classifier accuracy {j['accuracy']:.4f} = numpy's {acc:.4f} on {m} images")
    # classifier.dal trains: 150 steps at batch 8 on these 24 images memorise them
    # (labels as the npy dataset's input 'label'; eval's labels as captions, one a line).
    # At 100 steps the mean loss is still ~0.1 and whether all 24 are right depended
    # on rounding (im2col 24/24, Winograd convs 23/24); at 150 both are at ~0.01.
    run(model("classifier", "s16", 8) + ["--", "train", "--steps", "150", "--data",
                                         f"npy:x={t}/fx.npy,label={t}/fy.npy", "--log", f"{t}/cls.tsv",
                                         "--checkpoint", f"{t}/cls_trained.safetensors", "--quiet"])
    losses = [float(line.split("\t")[1]) for line in open(f"{t}/cls.tsv").read().splitlines()[1:]]
    with open(f"{t}/captions.txt", "w") as f:
        f.write("".join(caps[c] + "\n" for c in labels))
    j = evaluate("classifier", "s16", ["classify", "--images", f"{t}/fx.npy", "--labels", f"{t}/captions.txt",
                                       "--params", f"{t}/cls_trained.safetensors"])
    check(losses[0] > 2 and sum(losses[-10:]) / 10 < 0.3 and j["accuracy"] == 1.0,
          f"classifier.dal trains: loss {losses[0]:.3f} -> {sum(losses[-10:]) / 10:.3f}, "
          f"accuracy {j['accuracy']:.4f} on the 24 images it learned")
    run(["rm", "-rf", t])


if __name__ == "__main__":
    main()
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)
