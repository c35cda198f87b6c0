"""braid's selection kernels against torch on the same buffers, in one run:

    python bench/topk_compare.py [--sizes 1M 25M 100M] [--densities 0.01 0.001]
                                 [--repeat 5] [--threads N] [--no-cuda]

For each float32 buffer (normal values) and density k / n:
- exact top-k by magnitude: braid.ops.topk on the host against torch.topk of the
  same magnitudes (|x| computed before the clock starts, so torch is timed on the
  selection alone; a second column adds the |x| pass a user of torch.topk needs);
- DGC's threshold selection (braid.ops.threshold_topk, 1% sample);
- on a GPU (when torch sees one and braid has its CUDA kernels), the same kernels
  against torch.topk on the device.
Then the fused error-feedback pass (memory += a * grad + b * d: reads 3 and writes
1 value per element) against a plain copy (numpy.copyto on the host, torch copy_ on a GPU, into an allocated array: reads 1,
writes 1), as
bandwidth: bytes moved / time.

Both libraries get the same number of host threads: torch.get_num_threads(), or
--threads for both. Times are medians of --repeat runs after one warm-up. Prints
markdown tables.
"""

import argparse
import statistics
import time

import numpy as np
import torch

import braid.ops as ops


def parse_size(text):
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}
    if text[-1].upper() in scale:
        return int(float(text[:-1]) * scale[text[-1].upper()])
    return int(text)


def median_time(fn, repeat, sync=None):
    fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ms(seconds):
    return "%.2f" % (seconds * 1e3)


def host_rows(x, densities, threads, repeat):
    n = x.numel()
    mag = x.abs()
    rows = []
    for density in densities:
        k = max(1, int(n * density))
        braid_t = median_time(lambda: ops.topk(x, k, num_threads=threads), repeat)
        torch_t = median_time(lambda: torch.topk(mag, k, sorted=False), repeat)
        torch_abs_t = median_time(lambda: torch.topk(x.abs(), k, sorted=False), repeat)
        thr_t = median_time(lambda: ops.threshold_topk(x, k, num_threads=threads), repeat)
        rounds = ops.threshold_topk(x, k)[2].rounds
        rows.append("| %s | %g%% | %d | %s | %s | %s | **%.1fx** | %s (%d) |" % (
            label(n), density * 100, k, ms(braid_t), ms(torch_t), ms(torch_abs_t),
            torch_t / braid_t, ms(thr_t), rounds))
    return rows


def device_rows(x, densities, repeat):
    xc = x.cuda()
    magc = xc.abs()
    sync = torch.cuda.synchronize
    rows = []
    for density in densities:
        k = max(1, int(xc.numel() * density))
        braid_t = median_time(lambda: ops.topk(xc, k), repeat, sync)
        torch_t = median_time(lambda: torch.topk(magc, k, sorted=False), repeat, sync)
        thr_t = median_time(lambda: ops.threshold_topk(xc, k), repeat, sync)
        rows.append("| %s | %g%% | %d | %s | %s | %.1fx | %s |" % (
            label(xc.numel()), density * 100, k, ms(braid_t), ms(torch_t), torch_t / braid_t,
            ms(thr_t)))
    return rows


def feedback_row(n, device, threads, repeat):
    make = (lambda: torch.randn(n, device=device))
    e, g, d = make(), make(), make()
    sync = torch.cuda.synchronize if device != "cpu" else None
    ef_t = median_time(lambda: ops.error_feedback(e, g, a=0.01, d=d, b=0.9,
                                                  num_threads=threads), repeat, sync)
    dst = torch.empty_like(e)
    if device == "cpu":
        src_np, dst_np = e.numpy(), dst.numpy()
        copy_t = median_time(lambda: np.copyto(dst_np, src_np), repeat)
    else:
        copy_t = median_time(lambda: dst.copy_(e), repeat, sync)
    ef_bw = 4 * n * 4 / ef_t / 1e9
    copy_bw = 2 * n * 4 / copy_t / 1e9
    return "| %s | %s | %s | %.1f | %s | %.1f | %.0f%% |" % (
        device, label(n), ms(ef_t), ef_bw, ms(copy_t), copy_bw, 100 * ef_bw / copy_bw)


def label(n):
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale and n % scale == 0:
            return "%d%s" % (n // scale, unit)
    return str(n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1M", "25M", "100M"])
    parser.add_argument("--densities", nargs="+", type=float, default=[0.01, 0.001])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="host threads for both (default: torch.get_num_threads())")
    parser.add_argument("--no-cuda", action="store_true")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    sizes = [parse_size(s) for s in args.sizes]
    cuda = (not args.no_cuda and torch.cuda.is_available()
            and ops.compress_device_kernels_available())
    print("host threads (braid and torch): %d; torch %s; float32, normal values; "
          "median of %d\n" % (threads, torch.__version__, args.repeat))
    print("| n | density | k | braid topk ms | torch.topk ms | torch.topk(abs) ms "
          "| speedup | braid threshold ms (rounds) |")
    print("|---|---|---|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for n in sizes:
        x = torch.randn(n, generator=gen)
        for row in host_rows(x, args.densities, threads, args.repeat):
            print(row, flush=True)
        del x
    if cuda:
        print("\nGPU (%s)\n" % torch.cuda.get_device_name())
        print("| n | density | k | braid topk ms | torch.topk ms | speedup | braid threshold ms |")
        print("|---|---|---|---|---|---|---|")
        for n in sizes:
            for row in device_rows(torch.randn(n, generator=gen), args.densities, args.repeat):
                print(row, flush=True)
    print("\nError-feedback pass (e += a*g + b*d: 16 bytes per element) against a copy "
          "(numpy.copyto / torch copy_: 8 bytes per element)\n")
    print("| device | n | pass ms | pass GB/s | copy ms | copy GB/s | pass / copy |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        print(feedback_row(n, "cpu", threads, args.repeat), flush=True)
        if cuda:
            print(feedback_row(n, "cuda", threads, args.repeat), flush=True)


if __name__ == "__main__":
    main()
