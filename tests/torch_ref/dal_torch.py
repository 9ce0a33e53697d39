"""dal_torch.py — PyTorch reference implementations of dal's two model
families, exactly as /work/shared/MODELS.md specifies them: the numerical
oracle for models/dvae.dal and models/gpt.dal and the speed baseline.

The module and attribute names are chosen so that model.state_dict() keys are
MODELS.md section 4's parameter names (enc.stages.0.res.0.norm1.weight,
codebook.weight, blocks.0.attn.qkv.weight, head.bias, ...).

Run with /usr/bin/python3 (Debian's torch and numpy live there).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- configurations (MODELS.md sections 1 and 2) ----------------------------

DVAE_CONFIGS = {
    "tiny":  dict(S=16,  hid=16,  n_down=2, n_res=1, K=64,   D=32,  G=4,  batch=4,  lr=1e-3),
    "bench": dict(S=64,  hid=64,  n_down=3, n_res=1, K=512,  D=256, G=8,  batch=16, lr=3e-4),
    # small: sized to train to quality on a 2-core CPU (32x32 images, an 8x8 grid)
    "small": dict(S=32,  hid=32,  n_down=2, n_res=1, K=512,  D=64,  G=8,  batch=32, lr=1e-3),
    # small16: small with a 16x16 grid (2x2-pixel tokens), for shapes' corners
    "small16": dict(S=32, hid=32, n_down=1, n_res=1, K=512,  D=64,  G=8,  batch=32, lr=1e-3),
    # paper: compiled and shape-checked, not trained (no learning rate given)
    "paper": dict(S=256, hid=128, n_down=3, n_res=2, K=8192, D=512, G=32, batch=1),
}

GPT_CONFIGS = {
    "tiny":  dict(Lt=8,   Vt=64,    g=4,  K=64,   d=32,   L=2,  H=2,  batch=4,  lr=3e-4),
    "bench": dict(Lt=32,  Vt=1024,  g=8,  K=512,  d=256,  L=4,  H=8,  batch=16, lr=3e-4),
    "small": dict(Lt=16,  Vt=128,   g=8,  K=512,  d=128,  L=4,  H=4,  batch=32, lr=3e-4),
    "small16": dict(Lt=16, Vt=128,  g=16, K=512,  d=128,  L=4,  H=4,  batch=16, lr=3e-4),
    "paper": dict(Lt=256, Vt=16384, g=32, K=8192, d=3968, L=64, H=62, batch=1,  lr=3e-4),
}

# AdamW settings shared by every configuration of a family.
DVAE_ADAMW = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
GPT_ADAMW = dict(betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)  # matrices only


# ---- dVAE (stage 1) -----------------------------------------------------------

def dvae_channels(cfg):
    """[c(0), ..., c(n_down)]: c0 = hid, c(s+1) = min(2 c(s), 4 hid)."""
    cs = [cfg["hid"]]
    for _ in range(cfg["n_down"]):
        cs.append(min(2 * cs[-1], 4 * cfg["hid"]))
    return cs


def dvae_grid(cfg):
    """Side of the token grid: S / 2^n_down."""
    return cfg["S"] >> cfg["n_down"]


class ResBlock(nn.Module):
    """x + conv2(relu(norm2(conv1(relu(norm1(x)))))), shape-preserving."""

    def __init__(self, c, groups, device=None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c, eps=1e-5, device=device)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, device=device)
        self.norm2 = nn.GroupNorm(groups, c, eps=1e-5, device=device)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, device=device)

    def forward(self, x):
        h = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(h)))


class EncoderStage(nn.Module):
    """n_res residual blocks at c(s) channels, then a strided 4x4 conv to c(s+1)."""

    def __init__(self, c_in, c_out, n_res, groups, device=None):
        super().__init__()
        self.res = nn.ModuleList([ResBlock(c_in, groups, device) for _ in range(n_res)])
        self.down = nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, device=device)

    def forward(self, h):
        for block in self.res:
            h = block(h)
        return self.down(h)


class DecoderStage(nn.Module):
    """A 4x4 stride-2 transposed conv from c(s+1) to c(s), then n_res residual blocks."""

    def __init__(self, c_in, c_out, n_res, groups, device=None):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, device=device)
        self.res = nn.ModuleList([ResBlock(c_out, groups, device) for _ in range(n_res)])

    def forward(self, h):
        h = self.up(h)
        for block in self.res:
            h = block(h)
        return h


class Encoder(nn.Module):
    def __init__(self, cfg, device=None):
        super().__init__()
        cs, n_res, G = dvae_channels(cfg), cfg["n_res"], cfg["G"]
        top = cs[-1]
        self.conv_in = nn.Conv2d(3, cs[0], 3, padding=1, device=device)
        self.stages = nn.ModuleList([EncoderStage(cs[s], cs[s + 1], n_res, G, device)
                                     for s in range(cfg["n_down"])])
        self.mid = nn.ModuleList([ResBlock(top, G, device) for _ in range(n_res)])
        self.norm_out = nn.GroupNorm(G, top, eps=1e-5, device=device)
        self.conv_out = nn.Conv2d(top, cfg["K"], 1, device=device)

    def forward(self, x):                       # x [B,3,S,S] -> logits [B,K,h,w]
        h = self.conv_in(x)
        for stage in self.stages:
            h = stage(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.relu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg, device=None):
        super().__init__()
        cs, n_res, G = dvae_channels(cfg), cfg["n_res"], cfg["G"]
        top = cs[-1]
        self.conv_in = nn.Conv2d(cfg["D"], top, 1, device=device)
        self.mid = nn.ModuleList([ResBlock(top, G, device) for _ in range(n_res)])
        # stages[s] maps c(s+1) -> c(s); they run from s = n_down-1 down to 0
        self.stages = nn.ModuleList([DecoderStage(cs[s + 1], cs[s], n_res, G, device)
                                     for s in range(cfg["n_down"])])
        self.norm_out = nn.GroupNorm(G, cs[0], eps=1e-5, device=device)
        self.conv_out = nn.Conv2d(cs[0], 3, 3, padding=1, device=device)

    def forward(self, e):                       # e [B,D,h,w] -> recon [B,3,S,S]
        h = self.conv_in(e)
        for block in self.mid:
            h = block(h)
        for stage in reversed(self.stages):
            h = stage(h)
        return self.conv_out(F.relu(self.norm_out(h)))


class _StraightThrough(torch.autograd.Function):
    """Forward: 'hard' bit-exactly. Backward: the whole gradient goes to 'soft'."""

    @staticmethod
    def forward(ctx, hard, soft):
        return hard.clone()

    @staticmethod
    def backward(ctx, grad):
        return None, grad


def straight_through(hard, soft):
    return _StraightThrough.apply(hard, soft)


class DVAE(nn.Module):
    """The discrete VAE. Convs and transposed convs keep PyTorch's default
    initialisation (weight and bias uniform(+-1/sqrt(fan_in)), with fan_in =
    weight.size(1) * k * k, which for ConvTranspose2d is out_channels * k * k);
    the codebook is nn.Embedding's default normal(0, 1)."""

    def __init__(self, cfg, device=None):
        super().__init__()
        self.cfg = dict(cfg)
        self.enc = Encoder(cfg, device)
        self.codebook = nn.Embedding(cfg["K"], cfg["D"], device=device)   # E [K, D]
        self.dec = Decoder(cfg, device)

    def encode(self, x):                        # [B,3,S,S] -> logits [B,K,h,w]
        return self.enc(x)

    def tokens(self, x):                        # [B,3,S,S] -> i32 [B,h,w]
        return self.encode(x).argmax(dim=1).to(torch.int32)

    def embed(self, z):                         # z [B,K,h,w] -> e [B,D,h,w]
        return torch.einsum("bkhw,kd->bdhw", z, self.codebook.weight)

    def decode(self, z):                        # z [B,K,h,w] one-hot or soft -> [B,3,S,S]
        return self.dec(self.embed(z))

    def decode_tokens(self, t):                 # i32 [B,h,w] -> [B,3,S,S]
        e = self.codebook.weight[t.long()]      # [B,h,w,D]
        return self.dec(e.permute(0, 3, 1, 2))

    def loss_given_noise(self, x, noise, tau, beta):
        """Training loss with the Gumbel noise supplied: straight-through
        one-hot of argmax(logits + noise) forward, the gradient of
        softmax((logits + noise) / tau) backward; returns a scalar."""
        logits = self.encode(x)
        y = logits + noise
        soft = F.softmax(y / tau, dim=1)
        hard = F.one_hot(y.argmax(dim=1), self.cfg["K"]).permute(0, 3, 1, 2).to(y.dtype)
        recon = self.decode(straight_through(hard, soft))
        return F.mse_loss(recon, x) + beta * kl_to_uniform(logits).mean()

    def loss_soft_given_noise(self, x, noise, tau, beta, usage):
        """The soft relaxation with the noise supplied: the decoder sees
        softmax((logits + noise) / tau) itself; plus beta times the per-cell
        KL to uniform and usage times the KL of the average code
        distribution (over batch and cells) to uniform."""
        logits = self.encode(x)
        recon = self.decode(F.softmax((logits + noise) / tau, dim=1))
        avg = F.softmax(logits, dim=1).mean(dim=(0, 2, 3))
        usage_kl = (avg * (torch.log(avg + 1e-12) + math.log(self.cfg["K"]))).sum()
        return F.mse_loss(recon, x) + beta * kl_to_uniform(logits).mean() + usage * usage_kl

    def loss(self, x, tau, beta, generator=None):
        """The training entry: draws standard Gumbel noise itself."""
        u = torch.rand(x.shape[0], self.cfg["K"], *self.encode_shape(), generator=generator)
        noise = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
        return self.loss_given_noise(x, noise, tau, beta)

    def encode_shape(self):
        n = dvae_grid(self.cfg)
        return (n, n)


def kl_to_uniform(logits):
    """KL(softmax(logits) || Uniform(K)) over axis 1: [B,K,h,w] -> [B,h,w]."""
    logp = F.log_softmax(logits, dim=1)
    return (logp.exp() * (logp + math.log(logits.shape[1]))).sum(dim=1)


# ---- GPT (stage 2) ------------------------------------------------------------

def gpt_seq_len(cfg):
    """N = Lt + g*g - 1: the text, then every image token but the last."""
    return cfg["Lt"] + cfg["g"] ** 2 - 1


def gpt_vocab(cfg):
    """The joint vocabulary: Vt text ids, Lt pad ids, K image ids."""
    return cfg["Vt"] + cfg["Lt"] + cfg["K"]


class Attention(nn.Module):
    """Causal dense self-attention; qkv stacks q, k, v along its output
    dimension, heads contiguous within each (nn.MultiheadAttention's in_proj
    layout)."""

    def __init__(self, d, n_head, device=None):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d, 3 * d, device=device)
        self.proj = nn.Linear(d, d, device=device)

    def forward(self, x):                       # x [B,N,d]
        B, N, d = x.shape
        H, dh = self.n_head, d // self.n_head
        q, k, v = self.qkv(x).split(d, dim=2)   # each [B,N,d]
        q, k, v = (t.reshape(B, N, H, dh).transpose(1, 2) for t in (q, k, v))  # [B,H,N,dh]
        att = (q @ k.transpose(2, 3)) / math.sqrt(dh)                          # [B,H,N,N]
        mask = torch.ones(N, N, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, N, d)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, d, device=None):
        super().__init__()
        self.fc = nn.Linear(d, 4 * d, device=device)
        self.proj = nn.Linear(4 * d, d, device=device)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, d, n_head, device=None):
        super().__init__()
        self.ln1 = nn.LayerNorm(d, eps=1e-5, device=device)
        self.attn = Attention(d, n_head, device)
        self.ln2 = nn.LayerNorm(d, eps=1e-5, device=device)
        self.mlp = MLP(d, device)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only transformer over [text; image] tokens. Matrices and
    embeddings normal(0, 0.02), biases 0, LayerNorm weights 1."""

    def __init__(self, cfg, device=None):
        super().__init__()
        self.cfg = dict(cfg)
        Lt, Vt, g, K, d = cfg["Lt"], cfg["Vt"], cfg["g"], cfg["K"], cfg["d"]
        self.text_emb = nn.Embedding(Vt + Lt, d, device=device)
        self.text_pos = nn.Embedding(Lt, d, device=device)
        self.image_emb = nn.Embedding(K, d, device=device)
        self.row_emb = nn.Embedding(g, d, device=device)
        self.col_emb = nn.Embedding(g, d, device=device)
        self.blocks = nn.ModuleList([Block(d, cfg["H"], device) for _ in range(cfg["L"])])
        self.ln_f = nn.LayerNorm(d, eps=1e-5, device=device)
        self.head = nn.Linear(d, gpt_vocab(cfg), device=device)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def embed(self, text, image):
        """text i32 [B,Lt], image i32 [B,g*g] -> x [B,N,d]."""
        g = self.cfg["g"]
        tx = self.text_emb(text.long()) + self.text_pos.weight                 # [B,Lt,d]
        pos = (self.row_emb.weight[:, None, :] + self.col_emb.weight[None, :, :]).reshape(g * g, -1)
        ix = self.image_emb(image.long()) + pos                                # [B,g*g,d]
        return torch.cat([tx, ix[:, :-1]], dim=1)

    def logits(self, text, image):              # -> [B,N,Vt+Lt+K]
        x = self.embed(text, image)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def targets(self, text, image):
        """Position i predicts token i+1 of [text; image + Vt + Lt]: i64 [B,N]."""
        offset = self.cfg["Vt"] + self.cfg["Lt"]
        full = torch.cat([text.long(), image.long() + offset], dim=1)
        return full[:, 1:]

    def loss(self, text, image):
        """(1/8) mean CE over the text targets (positions 0..Lt-2) +
        (7/8) mean CE over the image targets (positions Lt-1..N-1)."""
        Lt = self.cfg["Lt"]
        logits = self.logits(text, image)
        ce = F.cross_entropy(logits.transpose(1, 2), self.targets(text, image), reduction="none")
        return ce[:, :Lt - 1].mean() / 8 + ce[:, Lt - 1:].mean() * 7 / 8


# ---- inputs and parameter counts --------------------------------------------------

def random_text(cfg, batch, generator=None):
    """i32 [batch, Lt] following MODELS.md: each row has a random length
    l in [1, Lt] of ids in [0, Vt); a padded position p holds Vt + p."""
    Lt, Vt = cfg["Lt"], cfg["Vt"]
    ids = torch.randint(0, Vt, (batch, Lt), generator=generator)
    length = torch.randint(1, Lt + 1, (batch, 1), generator=generator)
    pos = torch.arange(Lt)[None, :]
    return torch.where(pos < length, ids, Vt + pos).to(torch.int32)


def random_image_tokens(cfg, batch, generator=None):
    """i32 [batch, g*g] in [0, K)."""
    return torch.randint(0, cfg["K"], (batch, cfg["g"] ** 2), generator=generator).to(torch.int32)


def dvae_param_count(cfg):
    """Parameters of the dVAE of 'cfg', from the formula (no tensors built)."""
    cs, n_res, K, D = dvae_channels(cfg), cfg["n_res"], cfg["K"], cfg["D"]

    def conv(c_in, c_out, k):
        return c_out * c_in * k * k + c_out

    def res(c):
        return 2 * (2 * c) + 2 * conv(c, c, 3)

    n = conv(3, cs[0], 3) + conv(D, cs[-1], 1)                  # enc.conv_in, dec.conv_in
    for s in range(cfg["n_down"]):
        n += conv(cs[s], cs[s + 1], 4)                          # enc.stages.{s}.down
        n += conv(cs[s + 1], cs[s], 4)                          # dec.stages.{s}.up (bias [c(s)])
        n += 2 * n_res * res(cs[s])                             # enc and dec stage blocks
    n += 2 * n_res * res(cs[-1])                                # enc.mid, dec.mid
    n += 2 * cs[-1] + conv(cs[-1], K, 1)                        # enc.norm_out, enc.conv_out
    n += K * D                                                  # codebook
    n += 2 * cs[0] + conv(cs[0], 3, 3)                          # dec.norm_out, dec.conv_out
    return n


def gpt_param_count(cfg):
    """Parameters of the GPT of 'cfg', from the formula (no tensors built)."""
    Lt, Vt, g, K, d, L = cfg["Lt"], cfg["Vt"], cfg["g"], cfg["K"], cfg["d"], cfg["L"]
    V = gpt_vocab(cfg)
    embeddings = (Vt + Lt) * d + Lt * d + K * d + 2 * g * d
    block = 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    return embeddings + L * block + 2 * d + (d * V + V)


def torch_param_count(model):
    return sum(p.numel() for p in model.parameters())
