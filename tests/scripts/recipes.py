"""recipes.py BUILD — both recipes (tools/recipes/*.sh) run end to end with a
handful of steps: every stage runs, results.json holds every figure of the
table as a finite number, the one-file model and the PNG grids and plots
exist (and are PNG files), and the settings the recipe used are recorded.
A smoke test of the pipeline, not of quality (the README has the measured
runs). Run with /usr/bin/python3."""
import json
import math
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PNG = b"\x89PNG\r\n\x1a\n"

RECIPES = [
    ("shapes", ["--holdout", "red-circle+blue-triangle", "--seed", "3"],
     dict(DVAE_STEPS="6", GPT_STEPS="6", SAMPLES="1", EVAL_CAPTIONS="4", EVAL_IMAGES="64"),
     ["model.safetensors", "grid-seen.png", "grid-novel.png", "recon.png", "heldout.png", "dvae.png", "dalle.png",
      "generated-seen.npy", "generated-novel.npy"],
     ["dvae_psnr_db", "dvae_perplexity", "recon_caption_accuracy", "gpt_image_ce", "train_unigram_entropy",
      "caption_accuracy_seen", "caption_accuracy_novel", "train_seconds"],
     dict(holdout="red-circle+blue-triangle", seed=3, dvae_steps=6, gpt_steps=6, temperature=1.0, top_k=0)),
    ("fashion-mnist", ["--seed", "2"],
     dict(DVAE_STEPS="6", GPT_STEPS="6", CLS_STEPS="6", SAMPLES="2", EVAL_IMAGES="64"),
     ["model.safetensors", "generated.png", "generated.npy", "dvae.png", "dalle.png", "classifier.safetensors"],
     ["dvae_psnr_db", "dvae_perplexity", "gpt_image_ce", "train_unigram_entropy", "judge_real", "judge_recon",
      "judge_generated", "train_seconds"],
     dict(seed=2, dvae_steps=6, gpt_steps=6, temperature=1.0, top_k=0)),
]


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    failed = 0

    def check(ok, what):
        nonlocal failed
        print("%s %s" % ("PASS" if ok else "FAIL", what))
        failed += not ok

    for name, args, env, files, figures, settings in RECIPES:
        if name == "fashion-mnist" and not os.path.exists("/usr/share/datasets/fashion-mnist"):
            check(False, "fashion-mnist: the dataset is not installed (dataset-fashion-mnist)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            proc = subprocess.run(["sh", "tools/recipes/%s.sh" % name, "--build", build, "--out", out] + args,
                                  cwd=ROOT, env=dict(os.environ, **env), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, universal_newlines=True)
            check(proc.returncode == 0, "%s.sh exits 0" % name)
            if proc.returncode != 0:
                print(proc.stdout[-3000:])
                continue
            check("| figure | dal | target |" in proc.stdout, "%s.sh prints the results table" % name)
            for f in files:
                path = os.path.join(out, f)
                ok = os.path.isfile(path) and os.path.getsize(path) > 0
                if ok and f.endswith(".png"):
                    with open(path, "rb") as fh:
                        ok = fh.read(8) == PNG
                check(ok, "%s: %s written" % (name, f))
            with open(os.path.join(out, "results.json")) as fh:
                res = json.load(fh)
            for k in figures:
                v = res.get(k)
                check(isinstance(v, (int, float)) and math.isfinite(v), "%s: results.json %s = %r" % (name, k, v))
            for k, v in settings.items():
                check(res.get(k) == v, "%s: results.json records %s = %r (has %r)" % (name, k, v, res.get(k)))
    print("recipes: %d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
