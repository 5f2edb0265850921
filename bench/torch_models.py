"""bench/torch_models.py - the PyTorch side of bench/run.sh.

The same networks as samples/*.mdl, trained the same way (same batch, optimizer -
run.sh passes the generated model's - and thread count, random data), timed per train step. Prints one line in the format
bench/step_timer.c prints, so run.sh can put both side by side.

--memory adds a second line, measured after the timed steps (so it does not touch their
timing or the peak RSS printed before it):
  saved_bytes        bytes of the tensors autograd saves for backward during one forward
                     (model and loss), from torch.autograd.graph.saved_tensors_hooks: each
                     storage counted once, whole (views of one storage share it); storages
                     of parameters and of the input batch (x, y) not counted.
  alloc_peak_bytes   the peak, over one whole train step (forward, backward, Adam update),
                     of the bytes the CPU allocator handed out during that step and had not
                     yet freed: the profiler's memory events (profile_memory=True) summed in
                     time order. The step starts with the gradients already freed
                     (zero_grad(set_to_none=True)), so this is what one step adds on top of
                     parameters, optimizer state and the input. "n/a" if the profiler gives
                     no memory events. Memory that oneDNN/OpenMP take outside PyTorch's
                     allocator is not seen."""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def lenet():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = self.b2(self.c2(h))
        return F.relu(h + (x if self.short is None else self.short(x)))


def resnet20(channels, size):
    layers = [nn.Unflatten(1, (channels, size, size)), nn.Conv2d(channels, 16, 3, 1, 1, bias=False),
              nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Basic(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def seq_twins():
    """samples/vit.mdl and samples/gpt.mdl's twins (bench/torch_seq.py)."""
    import os
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_seq
    return torch_seq


class TokenLoss(nn.Module):
    """A language model's per-token cross-entropy as the train step sees it: the input is
    a [B, T + 1] window of ids, the model reads the first T and predicts the last T."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, w):
        return self.lm(w[:, :-1])


MODELS = {
    "mlp": (mlp, (784,)),
    "lenet": (lenet, (784,)),
    "resnet": (lambda: resnet20(1, 28), (784,)),
    "resnet20_cifar": (lambda: resnet20(3, 32), (3072,)),
    "vit": (lambda: seq_twins().ViT(), (784,)),
    "gpt": (lambda: TokenLoss(seq_twins().GPT()), "tokens"),
}


def storage_of(t):
    """(address, bytes) of the storage under t; 1.13 has no Tensor.untyped_storage()."""
    try:
        st = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage().untyped()
        return st.data_ptr(), st.nbytes()
    except (RuntimeError, NotImplementedError):  # e.g. an opaque (mkldnn) tensor
        return ("opaque", id(t)), t.numel() * t.element_size()


def saved_for_backward(net, loss_of, exclude):
    """Bytes of the storages autograd saves during one forward, each counted once."""
    seen = {}

    def pack(t):
        key, nbytes = storage_of(t)
        if key not in exclude and key != 0:
            seen[key] = nbytes
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_of()
    del loss
    return sum(seen.values())


def allocator_peak(step):
    """Peak of the bytes allocated and not yet freed during one step, from the profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    if not events:
        return None
    events.sort(key=lambda e: e.start_us())  # stable: ties keep the recorded order
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def cuda_step_peak(step):
    """Peak bytes the CUDA caching allocator handed out during one step, above what was
    allocated before it (parameters, optimizer state, inputs): activations, gradients,
    cuDNN workspaces and the optimizer's temporaries."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"))
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--momentum", type=float, default=0.0, help="sgd")
    ap.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999), help="adam, adamw")
    ap.add_argument("--eps", type=float, default=1e-8, help="adam, adamw")
    ap.add_argument("--weight-decay", type=float, default=0.0, help="adam, sgd: L2 in the gradient; adamw: decoupled")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--memory", action="store_true",
                    help="also print saved_bytes and alloc_peak_bytes (CPU: the profiler's allocator events; "
                         "CUDA: the caching allocator's peak in one step above what was allocated before it)")
    ap.add_argument("--no-tf32", action="store_true",
                    help="CUDA: cuDNN convolutions in full FP32, as mlc's cuBLAS calls are (PyTorch lets cuDNN use "
                         "TF32 by default)")
    ap.add_argument("--bf16", action="store_true",
                    help="mixed precision as GPU users train: torch.autocast(bfloat16) around the forward and the "
                         "loss, channels_last for 4-D inputs and models (mlc: --precision bf16)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if a.no_tf32:
        conv = getattr(torch.backends.cudnn, "conv", None)
        if conv is not None and hasattr(conv, "fp32_precision"):  # PyTorch >= 2.9
            conv.fp32_precision = "ieee"
            torch.backends.cuda.matmul.fp32_precision = "ieee"
        else:
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    make, shape = MODELS[a.model]
    net = make().to(dev)
    if a.bf16 and shape != "tokens" and len(shape) == 3:
        net = net.to(memory_format=torch.channels_last)
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    else:
        kind = torch.optim.AdamW if a.optimizer == "adamw" else torch.optim.Adam
        opt = kind(net.parameters(), lr=a.lr, betas=tuple(a.betas), eps=a.eps, weight_decay=a.weight_decay)
    if shape == "tokens":  # a window of 129 ids: 128 in, the same shifted by one as targets
        x = torch.randint(0, 256, (a.batch, 129), device=dev)
        y = x[:, 1:].reshape(-1)

        def loss_of():
            return F.cross_entropy(net(x).reshape(-1, 256), y)
    else:
        x = torch.rand(a.batch, *shape, device=dev)
        if a.bf16 and len(shape) == 3:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (a.batch,), device=dev)

        def loss_of():
            return F.cross_entropy(net(x), y)

    def step():
        opt.zero_grad(set_to_none=True)
        if a.bf16:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                loss = loss_of()
        else:
            loss = loss_of()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        sync()
        t0 = time.perf_counter()
        loss = step()  # .item() waits for the GPU too
        times.append(time.perf_counter() - t0)
    times.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    variant = "-bf16" if a.bf16 else "-notf32" if a.no_tf32 else ""
    print(f"model={a.model} target=pytorch-{torch.__version__}-{dev.type}{variant} batch={a.batch} steps={a.steps} "
          f"median_ms={1e3 * statistics.median(times):.4f} p10_ms={1e3 * times[len(times) // 10]:.4f} "
          f"p90_ms={1e3 * times[len(times) * 9 // 10]:.4f} peak_rss_mb={rss:.1f} loss={loss:.4f} "
          f"opt={a.optimizer} lr={a.lr:g} momentum={a.momentum:g} beta1={a.betas[0]:g} beta2={a.betas[1]:g} "
          f"eps={a.eps:g} wd={a.weight_decay:g}", flush=True)
    if a.memory:
        exclude = {storage_of(t)[0] for t in list(net.parameters()) + [x, y]}
        saved = saved_for_backward(net, loss_of, exclude)
        opt.zero_grad(set_to_none=True)  # free last step's gradients before the profiled step
        peak = allocator_peak(step) if dev.type == "cpu" else cuda_step_peak(step)
        print(f"model={a.model} saved_bytes={saved} alloc_peak_bytes={peak if peak is not None else 'n/a'}")


if __name__ == "__main__":
    main()
