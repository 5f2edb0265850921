"""bench/torch_models.py - the PyTorch side of bench/run.sh.

The same networks as samples/*.mdl, trained the same way (same batch, optimizer and
thread count, random data), timed per train step. Prints one line in the format
bench/step_timer.c prints, so run.sh can put both side by side."""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


MODELS = {"mlp": (mlp, (784,))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    make, shape = MODELS[a.model]
    net = make()
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    x = torch.rand(a.batch, *shape)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    times.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model={a.model} target=pytorch-{torch.__version__} batch={a.batch} steps={a.steps} "
          f"median_ms={1e3 * statistics.median(times):.4f} p10_ms={1e3 * times[len(times) // 10]:.4f} "
          f"p90_ms={1e3 * times[len(times) * 9 // 10]:.4f} peak_rss_mb={rss:.1f} loss={loss:.4f}")


if __name__ == "__main__":
    main()
