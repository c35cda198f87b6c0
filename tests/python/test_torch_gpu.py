"""braid.torch on CUDA tensors: over NCCL with one rank per GPU, host-staged over
MPI when ranks share a GPU (or BRAID_GPU_BACKEND=mpi). Skipped, with the reason,
where there is no GPU or the build has no GPU data plane."""

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu(hvd):
    if not torch.cuda.is_available():
        pytest.skip("no GPU visible")
    if not hvd.cuda_built():
        pytest.skip("this build of braid has no GPU data plane")
    device = torch.device("cuda", hvd.local_rank() % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


def test_allreduce_average_sum_and_scales(hvd, gpu):
    r, n = hvd.rank(), hvd.size()
    x = torch.arange(1000, dtype=torch.float32, device=gpu) + r
    expect = torch.arange(1000, dtype=torch.float32, device=gpu) + (n - 1) / 2
    torch.testing.assert_close(hvd.allreduce(x, name="gpu.avg"), expect)
    torch.testing.assert_close(hvd.allreduce(x, name="gpu.sum", op=hvd.Sum), expect * n)
    out = hvd.allreduce(x, name="gpu.scaled", op=hvd.Sum, prescale_factor=2.0,
                        postscale_factor=0.25)
    torch.testing.assert_close(out, expect * n / 2)
    assert out.device == gpu


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int32, torch.int64,
                                   torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_in_place_sum_every_dtype(hvd, gpu, dtype):
    r, n = hvd.rank(), hvd.size()
    x = torch.full((3, 5), r + 1, dtype=dtype, device=gpu)
    hvd.allreduce_(x, name="gpu.dtype.%s" % dtype, op=hvd.Sum)
    assert torch.equal(x.cpu(), torch.full((3, 5), n * (n + 1) // 2, dtype=dtype))


def test_many_async_handles_fuse(hvd, gpu):
    r, n = hvd.rank(), hvd.size()
    xs = [torch.full((257,), float(i + r), device=gpu) for i in range(40)]
    handles = [hvd.allreduce_async_(x, name="gpu.fuse.%d" % i, op=hvd.Sum)
               for i, x in enumerate(xs)]
    for i, h in enumerate(handles):
        out = hvd.synchronize(h)
        assert torch.equal(out.cpu(), torch.full((257,), float(i * n + n * (n - 1) // 2)))


def test_allgather_and_broadcast(hvd, gpu):
    r, n = hvd.rank(), hvd.size()
    g = hvd.allgather(torch.full((r + 1, 2), r, dtype=torch.int64, device=gpu), name="gpu.ag")
    assert g.device == gpu and g.shape == (n * (n + 1) // 2, 2)
    expect = torch.cat([torch.full((q + 1, 2), q, dtype=torch.int64) for q in range(n)])
    assert torch.equal(g.cpu(), expect)
    b = torch.full((4,), float(r), device=gpu)
    hvd.broadcast_(b, root_rank=0, name="gpu.bc")
    assert torch.equal(b.cpu(), torch.zeros(4))


def test_written_on_a_side_stream_right_before_the_allreduce(hvd, gpu):
    """No explicit synchronisation: the engine orders after the stream the tensor
    was produced on, and the result is read on another stream."""
    n = hvd.size()
    side = torch.cuda.Stream(device=gpu)
    x = torch.empty(1 << 22, device=gpu)
    wrong = 0
    for it in range(200):
        with torch.cuda.stream(side):
            x.fill_(float(it))
            x.mul_(1.0)  # more work queued on the side stream
            out = hvd.allreduce(x, name="gpu.order", op=hvd.Sum)
        # Read back on the default stream, which does not wait for `side` itself.
        if out[-1].item() != it * n:
            wrong += 1
        side.synchronize()
    assert wrong == 0


def test_distributed_optimizer_trains_a_cuda_model(hvd, gpu):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 1)).to(gpu)
    opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.05),
                                   named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    gen = torch.Generator().manual_seed(1 + hvd.rank())
    data = torch.randn(64, 8, generator=gen).to(gpu)
    target = data.sum(dim=1, keepdim=True)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(data), target)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
    w = hvd.allgather(model[0].weight.detach()[None], name="gpu.same")
    for q in range(1, hvd.size()):
        assert torch.equal(w[q], w[0])


def test_host_and_gpu_tensors_of_one_name_are_a_clear_error(hvd, gpu):
    """Rank 0 submits host memory, the others GPU memory: every rank gets the same
    error naming each rank's device, and the engine goes on working."""
    if hvd.size() < 2:
        pytest.skip("needs two ranks")
    r = hvd.rank()
    x = torch.ones(8) if r == 0 else torch.ones(8, device=gpu)
    with pytest.raises(hvd.BraidMismatchError) as err:
        hvd.allreduce(x, name="gpu.mixed")
    message = str(err.value)
    assert "devices" in message and "cpu" in message and "cuda" in message, message
    y = hvd.allreduce(torch.full((8,), float(r), device=gpu), name="gpu.after_mixed", op=hvd.Sum)
    assert torch.equal(y.cpu(), torch.full((8,), float(hvd.size() * (hvd.size() - 1) // 2)))


def _ring(r, n):
    return sorted({(r + 1) % n, (r - 1) % n} - {r})


def test_neighbor_allreduce_and_exchange(hvd, gpu):
    import braid

    r, n = hvd.rank(), hvd.size()
    peers = _ring(r, n)
    w = 1.0 / (len(peers) + 1)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        x = torch.arange(257, dtype=dtype, device=gpu) + r
        out = braid.neighbor_allreduce(x, peers, peers, name="gpu.mix.%s" % dtype)
        expect = (torch.arange(257, dtype=torch.float64, device=gpu) * (len(peers) + 1)
                  + sum(peers) + r) * w
        torch.testing.assert_close(out.double(), expect, rtol=1e-2 if dtype in (
            torch.float16, torch.bfloat16) else 1e-6, atol=1e-2)
        assert out.device == gpu
    got = braid.neighbor_exchange(torch.full((3,), r, dtype=torch.int32, device=gpu), peers,
                                  peers, name="gpu.exchange")
    got = torch.from_dlpack(got)
    assert got.device == gpu
    assert got.cpu().tolist() == [[p] * 3 for p in peers]


def test_decentralized_optimizer_on_cuda_matches_cpu(hvd, gpu):
    r = hvd.rank()
    results = []
    for device in (torch.device("cpu"), gpu):
        torch.manual_seed(3)
        model = torch.nn.Linear(5, 2).double().to(device)
        sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        opt = hvd.DecentralizedOptimizer(sgd, topology="one_peer_exponential",
                                         name="gpu.dsgd.%s" % device.type)
        for t in range(3):
            x = torch.full((4, 5), float(r + t), dtype=torch.float64, device=device)
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        results.append([p.detach().cpu() for p in model.parameters()])
        results[-1].append(torch.tensor(opt.consensus_distance()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
