"""bench/torch_seq.py - PyTorch twins of samples/vit.mdl and samples/gpt.mdl.

The same networks, initialised from the same distributions as mlc initialises them
(dense and conv weights He-uniform U(+-sqrt(6/fan_in)), biases zero, layer norms one and
zero, the explicit params as the .mdl declares them), trained with the same recipe. The
random draws differ (PyTorch's generator is not mlc's), so runs are compared by their
results, not bit for bit.

  torch_seq.py vit train [--epochs 15] [--batch 64] [--threads 2] [--augment crop:1,flip]
                         [--dropout P] [--label-smoothing E] [--patch-kernel K --patch-pad P]
      trains on Fashion-MNIST (Debian's dataset-fashion-mnist), prints the test accuracy
      after each epoch.
  torch_seq.py gpt train --data FILE [--steps 2000] [--batch 32] [--eval-every 200]
      trains on a text file read as bytes (the last 10 % is validation, as mlc's text
      loader splits it), prints the validation loss per token every --eval-every steps.
  torch_seq.py {vit,gpt} step [--steps 20] [--batch N] [--threads 2]
      median train-step time on random data, in the line format of bench/step_timer.c.

PyTorch 1.13 (Debian 12) has no F.scaled_dot_product_attention: attention is written
out (softmax(q k^T / sqrt(d)) v), as an eager user of that version would."""
import argparse
import gzip
import math
import statistics
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# samples/vit.mdl's recipe where it is not the trainer's default: the batch, dropout p in
# every block, cross_entropy's label_smoothing, train { augment }, the patch convolution's
# kernel and padding (stride 4: overlapping 8x8 patches).
VIT_BATCH, VIT_DROPOUT, VIT_SMOOTHING, VIT_AUGMENT, VIT_KERNEL, VIT_PAD = 64, 0.0, 0.1, "crop:1", 8, 2


def he_uniform_(w, fan_in):
    bound = math.sqrt(6.0 / fan_in)
    with torch.no_grad():
        w.uniform_(-bound, bound)


class Dense(nn.Linear):
    """mlc's dense: He-uniform weight, zero bias."""

    def __init__(self, fin, fout, bias=True):
        super().__init__(fin, fout, bias=bias)
        he_uniform_(self.weight, fin)
        if bias:
            nn.init.zeros_(self.bias)


class Attention(nn.Module):
    def __init__(self, dim, heads, causal):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.q, self.k, self.v = Dense(dim, dim), Dense(dim, dim), Dense(dim, dim)
        self.proj = Dense(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads

        def split(y):
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool).tril()
            s = s.masked_fill(~mask, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v
        return self.proj(a.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)) with GELU; dropout p
    (when not 0) on each residual branch and on the MLP's hidden layer, where vit.mdl has it."""

    def __init__(self, dim, heads, hidden, causal, p=0.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, causal)
        self.fc1, self.fc2 = Dense(dim, hidden), Dense(hidden, dim)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln1(x)))
        h = self.drop(F.gelu(self.fc1(self.ln2(x))))
        return x + self.drop(self.fc2(h))


class ViT(nn.Module):
    def __init__(self, dim=64, heads=4, depth=4, hidden=128, patch=4, kernel=VIT_KERNEL, pad=VIT_PAD, p=0.0):
        super().__init__()
        kernel = kernel or patch  # a kernel wider than the stride: overlapping patches
        self.patch = nn.Conv2d(1, dim, kernel, stride=patch, padding=pad)
        he_uniform_(self.patch.weight, kernel * kernel)
        nn.init.zeros_(self.patch.bias)
        n = ((28 + 2 * pad - kernel) // patch + 1) ** 2
        self.pos = nn.Parameter(torch.randn(n, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, hidden, False, p) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)
        self.head = Dense(dim, 10)

    def forward(self, image):
        x = self.patch(image.view(-1, 1, 28, 28)).flatten(2).transpose(1, 2) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x).mean(dim=1))


class GPT(nn.Module):
    def __init__(self, vocab=256, dim=128, heads=4, depth=4, context=128):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab, dim) * 0.02)
        self.wpe = nn.Parameter(torch.randn(context, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, 4 * dim, True) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)

    def forward(self, tokens):
        x = F.embedding(tokens, self.wte) + self.wpe[: tokens.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x) @ self.wte.t()  # tied output projection


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).view(*dims)


def fashion(split):
    root = "/usr/share/datasets/fashion-mnist/"
    pre = "train" if split == "train" else "t10k"
    x = read_idx(root + pre + "-images-idx3-ubyte.gz").float().div(255).view(-1, 784)
    y = read_idx(root + pre + "-labels-idx1-ubyte.gz").long()
    return (x - 0.286) / 0.353, y


def cosine_lr(lr, step, total, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def augment(x, crop, flip):
    """mlc's `augment = "crop:N,flip"` on a batch of normalised 28x28 images: each sample
    shifted by dy, dx in [-N, N] (the uncovered border is a zero pixel, normalised) and
    mirrored with probability 1/2; the draws are torch's, not mlc's Philox."""
    if not crop and not flip:
        return x
    b = x.shape[0]
    img = x.view(b, 28, 28)
    pad = (0 - 0.286) / 0.353
    out = torch.full_like(img, pad)
    shifts = torch.randint(-crop, crop + 1, (b, 2)) if crop else torch.zeros(b, 2, dtype=torch.long)
    mirror = torch.rand(b) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    for i in range(b):
        src = img[i].flip(1) if mirror[i] else img[i]
        dy, dx = int(shifts[i, 0]), int(shifts[i, 1])
        # out[r, c] = src[r + dy, c + dx] where that lies inside the image
        r0, r1 = max(0, -dy), min(28, 28 - dy)
        c0, c1 = max(0, -dx), min(28, 28 - dx)
        out[i, r0:r1, c0:c1] = src[r0 + dy : r1 + dy, c0 + dx : c1 + dx]
    return out.view(b, 784)


def parse_augment(text):
    crop, flip = 0, False
    for part in (text or "none").split(","):
        if part.startswith("crop:"):
            crop = int(part[5:])
        elif part == "flip":
            flip = True
        elif part != "none":
            raise SystemExit(f"--augment: expected crop:N, flip or none, found {part!r}")
    return crop, flip


def train_vit(a):
    torch.manual_seed(a.seed)
    xtr, ytr = fashion("train")
    xte, yte = fashion("test")
    net = ViT(kernel=a.patch_kernel, pad=a.patch_pad, p=a.dropout)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.wd)
    per_epoch = xtr.shape[0] // a.batch
    total, warmup = per_epoch * a.epochs, per_epoch * a.warmup
    step = 0
    for epoch in range(a.epochs):
        net.train()
        perm = torch.randperm(xtr.shape[0])
        t0 = time.time()
        for i in range(per_epoch):
            idx = perm[i * a.batch : (i + 1) * a.batch]
            for g in opt.param_groups:
                g["lr"] = cosine_lr(a.lr, step, total, warmup)
            logits = net(augment(xtr[idx], *parse_augment(a.augment)))
            loss = F.cross_entropy(logits, ytr[idx], label_smoothing=a.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        net.eval()
        with torch.no_grad():
            correct = sum((net(xte[j : j + 1000]).argmax(1) == yte[j : j + 1000]).sum().item()
                          for j in range(0, xte.shape[0], 1000))
        print(f"epoch {epoch + 1} loss {loss.item():.4f} test_acc {correct / xte.shape[0]:.4f} "
              f"time {time.time() - t0:.1f}s", flush=True)


def text_split(path):
    data = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.uint8).long()
    cut = data.numel() - data.numel() // 10
    return data[:cut], data[cut:]


def windows(data, starts, t):
    idx = starts[:, None] + torch.arange(t + 1)[None, :]
    w = data[idx]
    return w[:, :-1], w[:, 1:]


def eval_gpt(net, val, t, n=64):
    g = torch.Generator().manual_seed(1234)
    starts = torch.randint(0, val.numel() - t - 1, (n,), generator=g)
    x, y = windows(val, starts, t)
    net.eval()
    with torch.no_grad():
        loss = F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1)).item()
    net.train()
    return loss


def train_gpt(a):
    torch.manual_seed(a.seed)
    tr, val = text_split(a.data)
    net = GPT(context=a.context)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.wd)
    t0 = time.time()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(a.lr, step, a.steps, a.warmup_steps)
        x, y = windows(tr, torch.randint(0, tr.numel() - a.context - 1, (a.batch,)), a.context)
        loss = F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            v = eval_gpt(net, val, a.context)
            print(f"step {step + 1} loss {loss.item():.4f} val_loss {v:.4f} val_bpc {v / math.log(2):.4f} "
                  f"time {time.time() - t0:.1f}s", flush=True)


def step_time(a):
    torch.manual_seed(0)
    if a.model == "vit":
        net, x = ViT(kernel=a.patch_kernel, pad=a.patch_pad, p=a.dropout), torch.randn(a.batch, 784)
        y = torch.randint(0, 10, (a.batch,))

        def loss_of():
            return F.cross_entropy(net(x), y, label_smoothing=a.label_smoothing)
    else:
        net = GPT(context=a.context)
        x = torch.randint(0, 256, (a.batch, a.context))
        y = torch.randint(0, 256, (a.batch, a.context))

        def loss_of():
            return F.cross_entropy(net(x).reshape(-1, 256), y.reshape(-1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    times = []
    for i in range(a.steps + 3):
        t0 = time.perf_counter()
        loss = loss_of()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    print(f"torch {a.model} batch {a.batch} threads {a.threads} median_ms {1e3 * statistics.median(times):.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["vit", "gpt"])
    ap.add_argument("mode", choices=["train", "step"])
    ap.add_argument("--data")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--wd", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=1, help="vit: warm-up epochs")
    ap.add_argument("--warmup-steps", type=int, default=100, help="gpt: warm-up steps")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--augment", default=None, help="vit: as a train { augment } (none, crop:N, flip)")
    ap.add_argument("--dropout", type=float, default=None, help="vit: dropout of each block (vit.mdl's p)")
    ap.add_argument("--patch-kernel", type=int, default=VIT_KERNEL, help="vit: the patch conv's kernel (stride 4)")
    ap.add_argument("--patch-pad", type=int, default=VIT_PAD, help="vit: the patch conv's padding")
    ap.add_argument("--label-smoothing", type=float, default=None, help="vit: cross_entropy's label_smoothing")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    vit = a.model == "vit"
    a.batch = a.batch or (VIT_BATCH if vit else 32)
    a.augment = a.augment if a.augment is not None else (VIT_AUGMENT if vit else "none")
    a.lr = a.lr or (2e-3 if vit else 1e-3)
    a.wd = a.wd if a.wd is not None else (0.05 if vit else 0.1)
    a.dropout = a.dropout if a.dropout is not None else (VIT_DROPOUT if vit else 0.0)
    a.label_smoothing = a.label_smoothing if a.label_smoothing is not None else (VIT_SMOOTHING if vit else 0.0)
    if a.mode == "step":
        a.steps = a.steps or 20
        step_time(a)
    elif vit:
        train_vit(a)
    else:
        if not a.data:
            ap.error("gpt train needs --data FILE")
        a.steps = a.steps or 2000
        train_gpt(a)


if __name__ == "__main__":
    main()
