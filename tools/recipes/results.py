"""results.py DATASET OUT KEY=VALUE... — a recipe's results: gathers the
evaluations' JSON files in OUT into OUT/results.json and prints the table of
figures beside issue 9's targets and the PyTorch anchor (a run of the same
size on the same machine). Run by tools/recipes/*.sh with /usr/bin/python3."""
import json
import sys

# figure -> (label, target: (">=" or "<=", value) or None, anchor or None)
TABLES = {
    "fashion-mnist": [
        ("dvae_psnr_db", "dVAE hard-token PSNR (dB)", (">=", 24.0), 19.9),
        ("dvae_perplexity", "codebook perplexity (of 512)", (">=", 128.0), 42.9),
        ("gpt_image_ce", "GPT held-out image CE (nats/token)", ("<=", 1.5), 1.71),
        ("train_unigram_entropy", "unigram entropy of the training tokens", None, None),
        ("gpt_text_ce", "GPT held-out text CE (nats/token)", None, None),
        ("judge_real", "judge accuracy, real test images", None, 0.887),
        ("judge_recon", "judge accuracy, dVAE reconstructions", None, 0.797),
        ("judge_generated", "judge accuracy, generated from class captions", (">=", 0.80), 0.680),
    ],
    "shapes": [
        ("dvae_psnr_db", "dVAE hard-token PSNR (dB)", None, None),
        ("dvae_perplexity", "codebook perplexity (of 512)", None, None),
        ("recon_caption_accuracy", "reconstructions that keep their caption", None, None),
        ("gpt_image_ce", "GPT held-out image CE (nats/token)", None, None),
        ("train_unigram_entropy", "unigram entropy of the training tokens", None, None),
        ("caption_accuracy_seen", "caption accuracy, seen captions", (">=", 0.90), None),
        ("caption_accuracy_novel", "caption accuracy, never-seen compositions", (">=", 0.70), None),
    ],
}


def load(out, name):
    with open("%s/%s.json" % (out, name)) as f:
        return json.load(f)


def gather(dataset, out):
    d, g = load(out, "eval-dvae"), load(out, "eval-gpt")
    res = {"dvae_psnr_db": d["psnr_db"], "dvae_mse": d["mse"], "dvae_perplexity": d["perplexity"],
           "dvae_codes_used": d["codes_used"], "gpt_image_ce": g["image_ce"],
           "gpt_text_ce": g.get("text_ce"), "train_unigram_entropy": g.get("train_unigram_entropy")}
    if dataset == "fashion-mnist":
        for split in ("real", "recon", "generated"):
            res["judge_" + split] = load(out, "cls-" + split)["accuracy"]
    else:
        res["recon_caption_accuracy"] = load(out, "judge-recon")["all"]["accuracy"]["all"]
        for split in ("seen", "novel"):
            res["caption_accuracy_" + split] = load(out, "judge-" + split)["all"]["accuracy"]["all"]
    return res


def number(v):
    return "-" if v is None else ("%.4g" % v if isinstance(v, float) else str(v))


def main():
    dataset, out = sys.argv[1], sys.argv[2]
    res = {"dataset": dataset}
    for kv in sys.argv[3:]:
        k, v = kv.split("=", 1)
        try:
            res[k] = int(v)
        except ValueError:
            try:
                res[k] = float(v)
            except ValueError:
                res[k] = v
    res.update(gather(dataset, out))
    with open("%s/results.json" % out, "w") as f:
        json.dump(res, f, indent=1)
    print("| figure | dal | target | PyTorch anchor |\n|---|---|---|---|")
    for key, label, target, anchor in TABLES[dataset]:
        v = res.get(key)
        t = "-"
        if target:
            met = v is not None and (v >= target[1] if target[0] == ">=" else v <= target[1])
            t = "%s %s (%s)" % (target[0], number(target[1]), "met" if met else "missed")
        print("| %s | %s | %s | %s |" % (label, number(v), t, number(anchor)))
    figures = {row[0] for row in TABLES[dataset]} | {"dataset", "dvae_mse", "dvae_codes_used", "gpt_text_ce"}
    settings = ", ".join("%s %s" % (k, v) for k, v in res.items() if k not in figures)
    print("\n(%s)" % settings)


if __name__ == "__main__":
    main()
