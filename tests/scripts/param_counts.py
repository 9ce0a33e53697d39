"""param_counts.py BUILD_DIR — the parameter count that `dalc info` reports
for models/dvae.dal and models/gpt.dal in every configuration equals the
PyTorch reference's.

tiny and bench: counted on real reference modules (and the closed-form
counts in dal_torch.py are checked against them). paper: the GPT from the
closed form (about 12.29 billion; no tensors are made), the dVAE from a
reference module on the 'meta' device (shapes only, no memory).
Run with /usr/bin/python3.
"""
import os
import re
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch_ref"))
import dal_torch as dt  # noqa: E402

FAMILIES = {
    "dvae": (dt.DVAE_CONFIGS, dt.DVAE, dt.dvae_param_count),
    "gpt": (dt.GPT_CONFIGS, dt.GPT, dt.gpt_param_count),
}


def reference_count(family, config):
    """(count, problem or None) for one configuration."""
    configs, module, formula = FAMILIES[family]
    cfg = configs[config]
    if config != "paper":
        n = dt.torch_param_count(module(cfg))
        if n != formula(cfg):
            return n, "closed form gives %d, the torch module %d" % (formula(cfg), n)
        return n, None
    if family == "dvae":
        return dt.torch_param_count(module(cfg, device="meta")), None
    return formula(cfg), None


def dalc_count(dalc, family, config):
    """The number after 'parameters:' in `dalc info`, or raises RuntimeError."""
    cmd = [dalc, "info", os.path.join(ROOT, "models", family + ".dal"), "--config", config]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    m = re.search(r"^parameters:\s*([\d,]+)", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError("dalc info exit %d: %s" % (proc.returncode, " | ".join(msg[:6]) or "no output"))
    return int(m.group(1).replace(",", ""))


def main():
    if len(sys.argv) != 2:
        print("usage: param_counts.py BUILD_DIR", file=sys.stderr)
        return 2
    dalc = os.path.join(sys.argv[1], "dalc")
    if not os.access(dalc, os.X_OK):
        print("FAIL param_counts: %s is not built" % dalc)
        return 1
    torch.set_num_threads(2)
    failed = 0
    for family in FAMILIES:
        for config in ("tiny", "small", "small16", "bench", "paper"):
            want, problem = reference_count(family, config)
            try:
                got = dalc_count(dalc, family, config)
                ok = problem is None and got == want
                detail = problem or "dal %s, torch %s" % (format(got, ","), format(want, ","))
            except RuntimeError as e:
                ok, detail = False, str(e)
            print("%s %s %s parameters: %s" % ("PASS" if ok else "FAIL", family, config, detail))
            failed += not ok
    want = dt.gpt_param_count(dt.GPT_CONFIGS["paper"])
    ok = 12.25e9 < want < 12.35e9
    print("%s gpt paper is about 12.29 billion parameters: %s" % ("PASS" if ok else "FAIL", format(want, ",")))
    failed += not ok
    print("param_counts: %d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
