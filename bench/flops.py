"""flops.py — the arithmetic of each benchmarked step, counted analytically
from the model configurations of tests/torch_ref/dal_torch.py, so that
report.py can put each step's achieved GFLOP/s against the roof.

    /usr/bin/python3 bench/flops.py CONFIG FORWARD_CONFIG     (prints JSON)

Counted: the multiply-adds of every matmul and convolution, 2 flops each
(they are ~all of the arithmetic; norms, activations, softmax and the
optimizer are elementwise and left out, so the figures are slight
underestimates).
  conv           2 x C_in x C_out x k x k x H_out x W_out per image
  conv_transpose 2 x C_in x C_out x k x k x H_in x W_in per image
  dVAE           encoder convs, the codebook product (one-hot or soft codes
                 [grid*grid, K] x [K, D]) and the decoder convs
  GPT            per layer and position 2 x 12 d^2 (qkv 3d^2, proj d^2, MLP
                 8d^2) plus the causal attention counted dense, 2 x 2 N^2 d
                 per layer and sequence (QK^T and AV), plus the head 2 d V
                 per position (V = Vt + Lt + K)
  training step  3 x the forward: the backward computes, for every product,
                 the gradient of its data input and of its weights, each as
                 much arithmetic as the forward product
Keys: dvae_train, gpt_train (CONFIG), dvae_forward (the `tokens` entry of
FORWARD_CONFIG: the encoder only); each {"config", "batch", "flops",
"forward_flops"}.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "torch_ref"))


def conv(c_in, c_out, k, side_out):
    return 2 * c_in * c_out * k * k * side_out * side_out


def conv_transpose(c_in, c_out, k, side_in):
    return 2 * c_in * c_out * k * k * side_in * side_in


def resblock(c, side):
    return 2 * conv(c, c, 3, side)


def dvae_encoder(cfg, cs):
    side, n = cfg["S"], conv(3, cs[0], 3, cfg["S"])
    for s in range(cfg["n_down"]):
        n += cfg["n_res"] * resblock(cs[s], side)
        side //= 2
        n += conv(cs[s], cs[s + 1], 4, side)
    n += cfg["n_res"] * resblock(cs[-1], side)
    return n + conv(cs[-1], cfg["K"], 1, side)


def dvae_decoder(cfg, cs, grid):
    side = grid
    n = conv(cfg["D"], cs[-1], 1, side) + cfg["n_res"] * resblock(cs[-1], side)
    for s in reversed(range(cfg["n_down"])):
        n += conv_transpose(cs[s + 1], cs[s], 4, side)
        side *= 2
        n += cfg["n_res"] * resblock(cs[s], side)
    return n + conv(cs[0], 3, 3, side)


def dvae_forward(cfg, dt, decode):
    """Per batch: the encoder, and with decode the codebook product and the decoder."""
    cs, grid = dt.dvae_channels(cfg), dt.dvae_grid(cfg)
    n = dvae_encoder(cfg, cs)
    if decode:
        n += 2 * grid * grid * cfg["K"] * cfg["D"] + dvae_decoder(cfg, cs, grid)
    return n * cfg["batch"]


def gpt_forward(cfg, dt):
    d, L, N = cfg["d"], cfg["L"], dt.gpt_seq_len(cfg)
    per_seq = N * (24 * d * d * L + 2 * d * dt.gpt_vocab(cfg)) + 4 * N * N * d * L
    return per_seq * cfg["batch"]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: flops.py CONFIG FORWARD_CONFIG")
    import dal_torch as dt
    config, fwd_config = sys.argv[1], sys.argv[2]
    out = {}
    dv, gp, fw = dt.DVAE_CONFIGS[config], dt.GPT_CONFIGS[config], dt.DVAE_CONFIGS[fwd_config]
    for key, cfg, forward, train in [("dvae_train", dv, dvae_forward(dv, dt, True), True),
                                     ("gpt_train", gp, gpt_forward(gp, dt), True),
                                     ("dvae_forward", fw, dvae_forward(fw, dt, False), False)]:
        out[key] = {"config": config if key != "dvae_forward" else fwd_config, "batch": cfg["batch"],
                    "forward_flops": forward, "flops": 3 * forward if train else forward}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
