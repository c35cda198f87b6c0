"""braid.ops.gossip_graph: the mixing weights every rank would use, checked here
against the defining properties written in the test (doubly stochastic, rank i
receives from j exactly when j sends to i, the average preserved, exact consensus
where the graph promises it). Local: every rank runs the same checks."""

import numpy as np
import pytest

import braid.ops as ops

KINDS = ["ring", "torus", "exponential", "one_peer_exponential", "complete", "base"]


def dense_from_weights(graph, step):
    n = graph.size
    w = np.zeros((n, n))
    for i in range(n):
        mix = graph.weights(i, step)
        w[i, i] = mix["self_weight"]
        for j, weight in mix["recv_from"]:
            w[i, j] += weight
    return w


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 8])
def test_weights_are_doubly_stochastic_and_consistent(kind, n):
    g = ops.gossip_graph(kind, n)
    for step in range(max(1, g.period) * 2):
        w = dense_from_weights(g, step)
        assert np.all(w >= 0)
        assert np.allclose(w.sum(axis=0), 1, atol=1e-12)
        assert np.allclose(w.sum(axis=1), 1, atol=1e-12)
        assert np.allclose(w, np.array(g.matrix(step)).reshape(n, n), atol=1e-15)
        for i in range(n):
            for j, weight in g.weights(i, step)["send_to"]:
                assert weight == pytest.approx(w[j, i])
        x = np.random.default_rng(n + step).standard_normal(n)
        assert (w @ x).mean() == pytest.approx(x.mean(), abs=1e-14)


def test_ring_of_five_is_one_third_each():
    w = dense_from_weights(ops.gossip_graph("ring", 5), 0)
    expected = np.zeros((5, 5))
    for i in range(5):
        for j in (i - 1, i, i + 1):
            expected[i, j % 5] = 1 / 3
    assert np.allclose(w, expected)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_one_peer_exponential_reaches_the_average_in_log2_n_steps(n):
    g = ops.gossip_graph("one_peer_exponential", n)
    x = np.arange(n, dtype=np.float64) ** 2
    for step in range(int(np.log2(n))):
        x = dense_from_weights(g, step) @ x
    assert np.allclose(x, np.mean(np.arange(n, dtype=np.float64) ** 2), atol=1e-12)
    assert g.exact_consensus


def test_spectral_gap_of_a_ring_is_one_minus_its_second_eigenvalue():
    n = 7
    w = dense_from_weights(ops.gossip_graph("ring", n), 0)
    second = sorted(abs(np.linalg.eigvalsh(w)))[-2]
    assert ops.gossip_graph("ring", n).spectral_gap() == pytest.approx(1 - second, abs=1e-12)
    assert ops.gossip_graph("complete", n).spectral_gap() == pytest.approx(1.0)


def test_user_matrix_is_checked():
    good = [[0.5, 0.5], [0.5, 0.5]]
    assert ops.gossip_graph_from_matrices(good).size == 2
    import braid

    with pytest.raises(braid.BraidError):
        ops.gossip_graph_from_matrices([[0.7, 0.3], [0.5, 0.5]])
    with pytest.raises(braid.BraidError):
        ops.gossip_graph("no_such_graph", 4)
