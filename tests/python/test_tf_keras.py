"""braid.tensorflow.keras (Keras 3): DistributedOptimizer in model.fit against one
process on the concatenated batches, the callbacks (broadcast, metric average,
learning-rate warm-up with momentum correction), and the restart callbacks against
restart_reference.py (N workers simulated with numpy from the papers' equations) and
against braid.torch's wrappers on the same problem.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_tf_keras.py"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import restart_reference as ref  # noqa: E402

# Keras keeps the learning rate in a float32 variable and casts the momentum through
# float32: 2^-4 and 0.875 are exact there, so the
# float64 runs below agree with the float64 reference to rounding.
LR, BETA = 0.0625, 0.875
TOL = 1e-9


@pytest.fixture(scope="module")
def khvd(tfhvd):
    import braid.tensorflow.keras as module

    return module


# ---------------------------------------------------------------- DistributedOptimizer

STEPS, BATCH = 4, 6


def regression_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,), dtype="float64"),
                              keras.layers.Dense(5, activation="tanh", dtype="float64"),
                              keras.layers.Dense(1, dtype="float64")])
    return model


def step_data(size):
    """Batches for STEPS steps: step i's global batch is rank 0's rows, then rank 1's..."""
    g = np.random.default_rng(3)
    x = g.standard_normal((STEPS, size, BATCH, 3))
    return x, np.cos(x.sum(-1, keepdims=True))


@pytest.fixture
def floatx64():
    """model.fit casts float inputs to keras.config.floatx(): float64 for these tests."""
    before = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(before)


def fit(model, x, y, batch, callbacks=()):
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0,
              callbacks=list(callbacks))
    return [w.copy() for w in model.get_weights()]


def test_distributed_optimizer_in_fit_equals_one_process(khvd, tf_world, floatx64):
    rank, size = tf_world
    x, y = step_data(size)
    model = regression_model(seed=0)
    model.compile(optimizer=khvd.DistributedOptimizer(keras.optimizers.SGD(0.1, momentum=0.5)),
                  loss="mse", jit_compile=False)
    got = fit(model, x[:, rank].reshape(-1, 3), y[:, rank].reshape(-1, 1), BATCH)
    single = regression_model(seed=0)
    single.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5), loss="mse")
    want = fit(single, x.reshape(-1, 3), y.reshape(-1, 1), BATCH * size)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_distributed_optimizer_keeps_the_class_and_config(khvd):
    base = keras.optimizers.Adam(learning_rate=0.003, beta_1=0.8)
    opt = khvd.DistributedOptimizer(base)
    assert isinstance(opt, keras.optimizers.Adam)
    assert opt.get_config()["beta_1"] == 0.8
    assert float(opt.learning_rate) == pytest.approx(0.003)
    with pytest.raises(ValueError, match="already distributed"):
        khvd.DistributedOptimizer(opt)
    with pytest.raises(NotImplementedError, match="backward_passes_per_step"):
        khvd.DistributedOptimizer(base, backward_passes_per_step=2)


def test_distributed_optimizer_apply_gradients_in_a_custom_loop(khvd, tf_world):
    rank, size = tf_world
    v = tf.Variable([1.0, 1.0])
    opt = khvd.DistributedOptimizer(keras.optimizers.SGD(1.0))
    opt.apply_gradients([(tf.constant([float(rank), 1.0]), v)])
    np.testing.assert_allclose(v.numpy(), [1.0 - (size - 1) / 2.0, 0.0])


# ---------------------------------------------------------------- callbacks


def test_broadcast_callback_starts_every_rank_from_the_roots_weights(khvd, tf_world):
    rank, size = tf_world
    root = size - 1
    model = regression_model(seed=100 + rank)  # different on every rank
    roots = [w.copy() for w in regression_model(seed=100 + root).get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=False)
    x, y = step_data(size)
    got = fit(model, x[:, rank].reshape(-1, 3), y[:, rank].reshape(-1, 1), BATCH,
              [khvd.callbacks.BroadcastGlobalVariablesCallback(root)])
    for g, w in zip(got, roots):
        np.testing.assert_array_equal(g, w)


def test_metric_average_callback(khvd, tf_world):
    rank, size = tf_world
    cb = khvd.callbacks.MetricAverageCallback()
    logs = {"loss": float(rank), "accuracy": np.float32(2 * rank), "val_loss": 1.0 + rank,
            "note": "not a number"}
    cb.on_epoch_end(0, logs)
    mean = (size - 1) / 2.0
    assert logs["loss"] == pytest.approx(mean) and logs["val_loss"] == pytest.approx(1 + mean)
    assert logs["accuracy"] == pytest.approx(2 * mean) and logs["note"] == "not a number"


def test_metric_average_in_fit_gives_every_rank_the_same_history(khvd, tf_world):
    rank, size = tf_world
    x, y = step_data(size)
    model = regression_model(seed=0)
    model.compile(optimizer=khvd.DistributedOptimizer(keras.optimizers.SGD(0.1)), loss="mse",
                  metrics=["mae"], jit_compile=False)
    history = model.fit(x[:, rank].reshape(-1, 3), y[:, rank].reshape(-1, 1), batch_size=BATCH,
                        epochs=2, shuffle=False, verbose=0,
                        callbacks=[khvd.callbacks.MetricAverageCallback()]).history
    every = khvd.allgather_object(history, name="tf.keras.history")
    assert all(h == every[0] for h in every)
    assert set(history) >= {"loss", "mae"}


class _RecordRate(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))


def test_learning_rate_warmup(khvd, tf_world):
    rank, size = tf_world
    steps, warmup, initial = 4, 2, 0.4
    x, y = step_data(size)
    model = regression_model(seed=0)
    model.compile(optimizer=khvd.DistributedOptimizer(keras.optimizers.SGD(initial)),
                  loss="mse", jit_compile=False)
    record = _RecordRate()
    warm = khvd.callbacks.LearningRateWarmupCallback(initial, warmup_epochs=warmup)
    xs, ys = x[:, rank].reshape(-1, 3), y[:, rank].reshape(-1, 1)
    model.fit(xs, ys, batch_size=BATCH, epochs=3, verbose=0, callbacks=[warm, record])
    want = []
    for epoch in range(3):
        for b in range(steps):
            e = epoch + (b + 1) / steps
            rate = initial / size * (e * (size - 1) / warmup + 1)
            want.append(min(rate, initial) if epoch < warmup else initial)
    np.testing.assert_allclose(record.rates, want, rtol=1e-6)


def test_warmup_momentum_correction_scales_the_velocity(khvd, tf_world):
    rank, size = tf_world
    if size < 2:
        pytest.skip("the rate changes only with two ranks or more")
    model = regression_model(seed=0)
    opt = keras.optimizers.SGD(1.0, momentum=0.9)
    model.compile(optimizer=opt, loss="mse")
    opt.build(model.trainable_variables)
    for m in opt.momentums:
        m.assign(tf.ones_like(m))
    warm = khvd.callbacks.LearningRateWarmupCallback(1.0, warmup_epochs=1, steps_per_epoch=2)
    warm.set_model(model)
    warm.on_epoch_begin(0)
    warm.on_train_batch_begin(0)  # lr: 1.0 -> (1/size)(0.5 (size - 1) + 1)
    new = (0.5 * (size - 1) + 1) / size
    assert float(np.asarray(opt.learning_rate)) == pytest.approx(new)
    for m in opt.momentums:
        np.testing.assert_allclose(m.numpy(), np.full(m.shape, new), rtol=1e-6)


# ---------------------------------------------------------------- restart callbacks


def reference_model():
    """The reference's linear layer (out = W x + b) in Keras: kernel = W^T."""
    model = keras.Sequential([keras.Input((ref.IN,), dtype="float64"),
                              keras.layers.Dense(ref.OUT, dtype="float64")])
    w0, b0 = ref.start()
    model.set_weights([w0.T.copy(), b0.copy()])
    return model


def local_step(model, optimizer, rank, t):
    x, y = ref.batch(rank, t)
    with tf.GradientTape() as tape:
        loss = 0.5 * tf.reduce_mean(tf.reduce_sum((model(x) - y) ** 2, axis=1))
    optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)


def run_steps(model, opt, restart, rank, steps):
    """Local steps 1..steps with restart.step() after each; [(params, velocity)] per
    step (checked after the loop, so that every rank makes the same collectives)."""
    out = []
    for t in range(1, steps + 1):
        local_step(model, opt, rank, t)
        restart.step()
        out.append((params(model), [opt.momentums[0].numpy().T, opt.momentums[1].numpy()]))
    return out


def params(model):
    kernel, bias = model.get_weights()
    return [kernel.T, bias]


def assert_matches(got, want, what):
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL, err_msg="%s, tensor %d" % (what, k))


@pytest.mark.parametrize("nesterov", [False, True], ids=["option1", "option2"])
@pytest.mark.parametrize("period", [1, 3])
def test_pr_sgd_momentum_matches_reference(khvd, tf_world, period, nesterov):
    rank, n = tf_world
    steps = 2 * period + 2
    expect = ref.local_momentum_sgd(n, steps, LR, BETA, nesterov, period, average_u=True)
    model = reference_model()
    opt = keras.optimizers.SGD(LR, momentum=BETA, nesterov=nesterov)
    restart = khvd.PRSGDMomentum(period, model=model, optimizer=opt)
    got = run_steps(model, opt, restart, rank, steps)
    for t, (x, velocity) in enumerate(got, 1):
        want_x, u = expect[t - 1][rank]
        assert_matches(x, want_x, "parameters after step %d" % t)
        # Keras keeps the velocity -lr * u (lr constant here).
        assert_matches(velocity, [-LR * uk for uk in u], "velocity after step %d" % t)
    assert restart.local_steps == steps


def test_local_sgd_in_fit_matches_reference(khvd, tf_world, floatx64):
    rank, n = tf_world
    steps, period = 7, 3
    expect = ref.local_momentum_sgd(n, steps, LR, BETA, False, period, average_u=False)
    model = reference_model()
    model.compile(optimizer=keras.optimizers.SGD(LR, momentum=BETA),
                  loss=lambda y, p: 0.5 * tf.reduce_sum((p - y) ** 2, axis=1))
    xs, ys = zip(*[ref.batch(rank, t) for t in range(1, steps + 1)])
    model.fit(np.concatenate(xs), np.concatenate(ys), batch_size=ref.BATCH, shuffle=False,
              verbose=0, callbacks=[khvd.LocalSGD(period)])
    assert_matches(params(model), expect[-1][rank][0], "parameters after fit")


@pytest.mark.parametrize("base_state,nesterov", [("keep", False), ("average", False),
                                                 ("reset", True)])
def test_slowmo_matches_reference(khvd, tf_world, base_state, nesterov):
    rank, n = tf_world
    steps, tau, alpha, beta_slow = 7, 3, 1.3, 0.6
    expect = ref.slowmo(n, steps, lambda t: LR, BETA, tau, alpha, beta_slow, nesterov,
                        base_state)
    model = reference_model()
    opt = keras.optimizers.SGD(LR, momentum=BETA)
    slowmo = khvd.SlowMo(tau, slow_lr=alpha, slow_momentum=beta_slow, nesterov=nesterov,
                         base_state=base_state, model=model, optimizer=opt)
    got = run_steps(model, opt, slowmo, rank, steps)
    for t, (x, velocity) in enumerate(got, 1):
        want_x, u = expect[t - 1][rank]
        assert_matches(x, want_x, "parameters after step %d" % t)
        assert_matches(velocity, [-LR * uk for uk in u], "velocity after step %d" % t)


def test_restart_callbacks_equal_braid_torch(khvd, tf_world):
    """The same problem through braid.torch.PRSGDMomentum and SlowMo gives the same
    weights, step by step."""
    torch = pytest.importorskip("torch")
    import braid.torch as thvd

    rank, n = tf_world
    w0, b0 = ref.start()
    for kind in ("PRSGDMomentum", "SlowMo"):
        tmodel = torch.nn.Linear(ref.IN, ref.OUT).double()
        with torch.no_grad():
            tmodel.weight.copy_(torch.from_numpy(w0))
            tmodel.bias.copy_(torch.from_numpy(b0))
        topt = torch.optim.SGD(tmodel.parameters(), lr=LR, momentum=BETA)
        kmodel = reference_model()
        kopt = keras.optimizers.SGD(LR, momentum=BETA)
        if kind == "PRSGDMomentum":
            twrap = thvd.PRSGDMomentum(topt, period=2)
            kwrap = khvd.PRSGDMomentum(2, model=kmodel, optimizer=kopt)
        else:
            twrap = thvd.SlowMo(topt, period=2, slow_lr=1.2, slow_momentum=0.5)
            kwrap = khvd.SlowMo(2, slow_lr=1.2, slow_momentum=0.5, model=kmodel, optimizer=kopt)
        pairs = []
        for t in range(1, 6):
            x, y = ref.batch(rank, t)
            twrap.zero_grad()
            out = tmodel(torch.from_numpy(x))
            (0.5 * ((out - torch.from_numpy(y)) ** 2).sum(1).mean()).backward()
            twrap.step()
            local_step(kmodel, kopt, rank, t)
            kwrap.step()
            pairs.append((params(kmodel), [tmodel.weight.detach().numpy().copy(),
                                           tmodel.bias.detach().numpy().copy()]))
        for t, (k, w) in enumerate(pairs, 1):
            assert_matches(k, w, "%s, step %d" % (kind, t))


def test_pr_sgd_momentum_needs_sgd_with_momentum(khvd):
    model = reference_model()
    with pytest.raises(ValueError, match="momentum of keras.optimizers.SGD"):
        khvd.PRSGDMomentum(2, model=model, optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="momentum 0"):
        khvd.PRSGDMomentum(2, model=model, optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="base_state"):
        khvd.SlowMo(2, base_state="drop")
