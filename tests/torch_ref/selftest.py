"""selftest.py — checks that the PyTorch reference itself follows MODELS.md,
against independent computations: a hand-written GPT loss, PyTorch's own
nn.MultiheadAttention for the qkv layout, causality, the straight-through
gradient of the dVAE, parameter names, initialisers and the safetensors
writer. parity.py runs it first (a wrong oracle would make parity
meaningless); it also runs alone: /usr/bin/python3 tests/torch_ref/selftest.py
"""
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dal_io  # noqa: E402
import dal_torch as dt  # noqa: E402

_failures = []


def check(cond, what):
    if not cond:
        _failures.append(what)
        print("FAIL torch_ref %s" % what)


def gpt_loss_by_hand():
    cfg = dt.GPT_CONFIGS["tiny"]
    torch.manual_seed(0)
    model = dt.GPT(cfg)
    text = dt.random_text(cfg, 3)
    image = dt.random_image_tokens(cfg, 3)
    Lt, Vt = cfg["Lt"], cfg["Vt"]
    seq = [list(text[b].tolist()) + [m + Vt + Lt for m in image[b].tolist()] for b in range(3)]
    logits = model.logits(text, image).double()
    N = dt.gpt_seq_len(cfg)
    check(logits.shape == (3, N, dt.gpt_vocab(cfg)), "gpt logits shape %s" % (tuple(logits.shape),))
    text_ce, image_ce = [], []
    for b in range(3):
        for i in range(N):
            row = logits[b, i]
            ce = float(torch.logsumexp(row, 0) - row[seq[b][i + 1]])
            (text_ce if i < Lt - 1 else image_ce).append(ce)
    check(len(image_ce) == 3 * cfg["g"] ** 2, "gpt image target count")
    want = np.mean(text_ce) / 8 + np.mean(image_ce) * 7 / 8
    got = float(model.loss(text, image))
    check(abs(got - want) <= 1e-5 * abs(want), "gpt loss %g != hand %g" % (got, want))


def gpt_attention_layout():
    """Our Attention equals nn.MultiheadAttention with the same weights."""
    d, H, N = 32, 4, 7
    torch.manual_seed(1)
    ours = dt.Attention(d, H)
    ref = torch.nn.MultiheadAttention(d, H, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(2, N, d)
    future = torch.ones(N, N, dtype=torch.bool).triu(1)   # True = not allowed
    want, _ = ref(x, x, x, attn_mask=future, need_weights=False)
    err = float((ours(x) - want).abs().max())
    check(err < 1e-5, "attention vs nn.MultiheadAttention err %g" % err)


def gpt_causal_and_gelu():
    cfg = dt.GPT_CONFIGS["tiny"]
    torch.manual_seed(2)
    model = dt.GPT(cfg)
    text, image = dt.random_text(cfg, 2), dt.random_image_tokens(cfg, 2)
    base = model.logits(text, image)
    j = 5                                                   # image token j sits at position Lt + j
    image2 = image.clone()
    image2[:, j] = (image2[:, j] + 1) % cfg["K"]
    moved = model.logits(text, image2)
    p = cfg["Lt"] + j
    check(torch.equal(base[:, :p], moved[:, :p]), "gpt: changing image token %d moved earlier logits" % j)
    check(not torch.allclose(base[:, p], moved[:, p]), "gpt: image token %d has no effect at its position" % j)
    image3 = image.clone()
    image3[:, -1] = (image3[:, -1] + 1) % cfg["K"]          # the last image token is never an input
    check(torch.equal(base, model.logits(text, image3)), "gpt: last image token is an input")
    x = torch.linspace(-4, 4, 101)
    hand = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    check(float((F.gelu(x, approximate="tanh") - hand).abs().max()) < 1e-6, "gelu tanh approximation")
    pads = dt.random_text(cfg, 64)
    ok = all((v < cfg["Vt"]) if (v < cfg["Vt"]) else v == cfg["Vt"] + p
             for row in pads.tolist() for p, v in enumerate(row))
    check(ok, "random_text: pads must hold Vt + position")


def gpt_names_and_init():
    cfg = dt.GPT_CONFIGS["bench"]
    torch.manual_seed(3)
    model = dt.GPT(cfg)
    sd = model.state_dict()
    for name in ["text_emb.weight", "text_pos.weight", "image_emb.weight", "row_emb.weight",
                 "col_emb.weight", "blocks.3.ln1.weight", "blocks.0.attn.qkv.weight",
                 "blocks.0.attn.proj.bias", "blocks.1.ln2.bias", "blocks.2.mlp.fc.weight",
                 "blocks.2.mlp.proj.bias", "ln_f.weight", "head.weight", "head.bias"]:
        check(name in sd, "gpt state_dict lacks %s" % name)
    check(sd["blocks.0.attn.qkv.weight"].shape == (3 * cfg["d"], cfg["d"]), "qkv layout [3d, d]")
    std = float(sd["blocks.1.mlp.fc.weight"].std())
    check(abs(std - 0.02) < 0.001, "gpt matrix init std %g" % std)
    check(float(sd["blocks.1.mlp.fc.bias"].abs().max()) == 0, "gpt bias init 0")
    check(bool((sd["ln_f.weight"] == 1).all()), "gpt layernorm weight init 1")
    check(dt.torch_param_count(model) == dt.gpt_param_count(cfg), "gpt param formula")


def dvae_straight_through():
    cfg = dt.DVAE_CONFIGS["tiny"]
    torch.manual_seed(4)
    model = dt.DVAE(cfg)
    B, K, n = 2, cfg["K"], dt.dvae_grid(cfg)
    x = torch.rand(B, 3, cfg["S"], cfg["S"]) * 2 - 1
    logits = model.encode(x)
    check(logits.shape == (B, K, n, n), "dvae logits shape %s" % (tuple(logits.shape),))
    noise = -torch.log(-torch.log(torch.rand(B, K, n, n)))
    loss = model.loss_given_noise(x, noise, 0.9, 0.1)
    loss.backward()
    g_enc = model.enc.conv_in.weight.grad
    check(g_enc is not None and float(g_enc.abs().max()) > 0, "dvae: gradient does not reach the encoder")
    check(float(model.codebook.weight.grad.abs().max()) > 0, "dvae: codebook gets no gradient")
    # the forward pass uses the hard one-hot: same value as decoding its tokens
    with torch.no_grad():
        t = (logits + noise).argmax(dim=1).to(torch.int32)
        recon = model.decode_tokens(t)
        want = F.mse_loss(recon, x) + 0.1 * dt.kl_to_uniform(logits).mean()
        check(abs(float(loss) - float(want)) < 1e-6, "dvae loss forward is not the hard one-hot")
        z = F.one_hot(t.long(), K).permute(0, 3, 1, 2).float()
        check(float((model.decode(z) - recon).abs().max()) < 1e-5, "decode(onehot) != decode_tokens")
        check(torch.equal(model.tokens(x), logits.argmax(dim=1).to(torch.int32)), "tokens = argmax")
        flat = torch.zeros(1, K, 1, 1)
        check(float(dt.kl_to_uniform(flat).abs().max()) < 1e-6, "KL of uniform logits is not 0")
        peaked = torch.full((1, K, 1, 1), -1e4)
        peaked[0, 0] = 0
        check(abs(float(dt.kl_to_uniform(peaked)) - math.log(K)) < 1e-4, "KL of one-hot is not log K")


def dvae_names_and_init():
    cfg = dt.DVAE_CONFIGS["tiny"]
    torch.manual_seed(5)
    model = dt.DVAE(cfg)
    sd = model.state_dict()
    cs = dt.dvae_channels(cfg)
    check(cs == [16, 32, 64], "tiny channels %s" % cs)
    check(dt.dvae_channels(dt.DVAE_CONFIGS["paper"]) == [128, 256, 512, 512], "paper channels")
    for name in ["enc.conv_in.weight", "enc.stages.0.res.0.norm1.weight", "enc.stages.1.res.0.conv2.bias",
                 "enc.stages.1.down.weight", "enc.mid.0.norm2.bias", "enc.norm_out.weight",
                 "enc.conv_out.bias", "codebook.weight", "dec.conv_in.weight", "dec.mid.0.conv1.weight",
                 "dec.stages.1.up.weight", "dec.stages.0.res.0.conv1.bias", "dec.norm_out.bias",
                 "dec.conv_out.weight"]:
        check(name in sd, "dvae state_dict lacks %s" % name)
    check(sd["codebook.weight"].shape == (cfg["K"], cfg["D"]), "codebook [K, D]")
    check(sd["dec.stages.1.up.weight"].shape == (cs[2], cs[1], 4, 4), "conv_transpose layout [in, out, k, k]")
    # kaiming-uniform bounds: conv fan_in = c_in k k; conv_transpose fan_in = c_out k k
    bound = 1 / math.sqrt(cs[0] * 9)
    w = sd["enc.stages.0.res.0.conv1.weight"]
    check(float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound, "conv init bound")
    bound = 1 / math.sqrt(cs[1] * 16)
    w = sd["dec.stages.1.up.weight"]
    check(float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound, "conv_transpose init bound")
    std = float(sd["codebook.weight"].std())
    check(abs(std - 1) < 0.1, "codebook init std %g" % std)
    check(dt.torch_param_count(model) == dt.dvae_param_count(cfg), "dvae param formula")


def safetensors_format():
    tensors = {"a.weight": torch.randn(3, 5), "b": np.arange(7, dtype=np.int32), "c": torch.randn(2, 1, 3)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.safetensors")
        dal_io.save_safetensors(path, tensors)
        with open(path, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        check(n % 8 == 0, "safetensors header length %d not a multiple of 8" % n)
        back = dal_io.load_safetensors(path)
        check(list(back) == list(tensors), "safetensors order")
        check(back["b"].dtype == np.int32 and list(back["b"]) == list(range(7)), "safetensors I32")
        check(np.array_equal(back["c"], tensors["c"].numpy()), "safetensors F32 round trip")
        with open(path, "wb") as f:
            f.write(raw[:-4])
        try:
            dal_io.load_safetensors(path)
            check(False, "truncated safetensors accepted")
        except ValueError:
            pass


def run():
    """Runs every check; returns the list of failure messages."""
    torch.set_num_threads(2)
    for fn in (gpt_loss_by_hand, gpt_attention_layout, gpt_causal_and_gelu, gpt_names_and_init,
               dvae_straight_through, dvae_names_and_init, safetensors_format):
        fn()
    return list(_failures)


if __name__ == "__main__":
    failures = run()
    print("%s torch_ref selftest (%d failures)" % ("FAIL" if failures else "PASS", len(failures)))
    sys.exit(1 if failures else 0)
