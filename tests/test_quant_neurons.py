"""Neuron step functions and surrogate gradients against values computed by hand
(reference/seed-models.md 1.2, 1.6, 2.2, 2.3)."""
import math

import pytest
import torch

from skipcore.quant.neurons import ALIFParams, ALIFState, LIFParams, LIFState, alif_step, lif_step
from skipcore.quant.surrogate import MultiGaussian, Triangle, get_surrogate
from skipcore.errors import ConfigError

torch.set_num_threads(1)


def run_lif(currents, **kw):
    params = LIFParams(**kw)
    state = LIFState.zeros(1, 1)
    spikes, volts = [], []
    for c in currents:
        s, state = lif_step(torch.tensor([[c]]), state, params)
        spikes.append(float(s))
        volts.append(float(state.v))
    return spikes, volts


def test_lif_soft_reset_by_hand():
    # H = 0.5 V + I; S = H >= 1; V = H - S
    spikes, volts = run_lif([0.6, 0.6, 0.6, 2.5, 0.0])
    assert spikes == [0, 0, 1, 1, 0]
    assert volts == pytest.approx([0.6, 0.9, 0.05, 1.525, 0.7625], abs=1e-6)


def test_lif_hard_reset_by_hand():
    spikes, volts = run_lif([0.6, 0.6, 0.6, 2.5, 0.0], soft_reset=False)
    assert spikes == [0, 0, 1, 1, 0]
    assert volts == pytest.approx([0.6, 0.9, 0.0, 0.0, 0.0], abs=1e-6)


def test_lif_fires_at_exactly_threshold_and_input_is_not_scaled():
    spikes, volts = run_lif([1.0])
    assert spikes == [1] and volts == [0.0]
    spikes, volts = run_lif([0.25, 0.0], lam=0.75, threshold=2.0)
    assert spikes == [0, 0] and volts == pytest.approx([0.25, 0.1875])


def run_alif(currents, *, alpha=0.5, rho=0.5, b0=0.1, beta=1.8):
    params = ALIFParams(alpha=torch.tensor([alpha]), rho=torch.tensor([rho]), b0=b0, beta=beta)
    state = ALIFState.zeros(1, 1)
    rows = []
    for c in currents:
        s, state = alif_step(torch.tensor([[c]]), state, params)
        rows.append((float(s), float(state.u), float(state.b)))
    return rows


def test_alif_one_step_late_reset_and_adaptation_by_hand():
    # t0: b=0, B=0.1, u=0.5*1=0.5 -> S=1 (u is NOT reset at t0)
    # t1: b=0.5*0+0.5*1=0.5, B=0.1+1.8*0.5=1.0, u=0.25+0.5-1.0*1=-0.25 -> S=0
    # t2: b=0.25, B=0.55, u=-0.125 -> S=0
    rows = run_alif([1.0, 1.0, 0.0])
    assert [r[0] for r in rows] == [1, 0, 0]
    assert [r[1] for r in rows] == pytest.approx([0.5, -0.25, -0.125], abs=1e-6)
    assert [r[2] for r in rows] == pytest.approx([0.0, 0.5, 0.25], abs=1e-6)


def test_alif_beta_zero_is_lif_with_threshold_b0():
    # t1: B stays 0.1: u = 0.25 + 0.5 - 0.1 = 0.65 -> fires again
    rows = run_alif([1.0, 1.0, 0.0], beta=0.0)
    assert [r[0] for r in rows] == [1, 1, 1]
    assert [r[1] for r in rows] == pytest.approx([0.5, 0.65, 0.225], abs=1e-6)


def test_alif_comparison_is_strict():
    rows = run_alif([0.2])  # u = 0.1 == B = b0 -> no spike
    assert rows[0][0] == 0
    assert rows[0][1] == pytest.approx(0.1)


def surrogate_grad(step, x_values, **params):
    x = torch.tensor(x_values, requires_grad=True)
    if step == "lif":
        s, _ = lif_step(x.view(1, -1) + 1.0, LIFState.zeros(1, len(x_values)),
                        LIFParams(spike_fn=get_surrogate("triangle"), **params))
    else:
        n = len(x_values)
        # alpha = 0 makes u = I; b0 = 0 and beta irrelevant (S_prev = 0): x = u - B = I
        s, _ = alif_step(x.view(1, -1), ALIFState.zeros(1, n),
                         ALIFParams(alpha=torch.zeros(n), rho=torch.zeros(n), b0=0.0, beta=1.8,
                                    spike_fn=get_surrogate("multi_gaussian")))
    s.sum().backward()
    return x.grad.tolist(), s.detach().view(-1).tolist()


def test_triangle_surrogate_values():
    # x = H - th; dS/dx = max(0, 1 - |x|)
    xs = [-1.5, -0.5, 0.0, 0.3, 1.0, 2.0]
    grads, spikes = surrogate_grad("lif", xs)
    assert grads == pytest.approx([0.0, 0.5, 1.0, 0.7, 0.0, 0.0], abs=1e-6)
    assert spikes == [0, 0, 1, 1, 1, 1]
    assert Triangle(width=2.0).derivative(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([0.5, 0.25])


def mg_reference(x, gamma=0.5, sigma=0.5, hh=0.15, scale=6.0):
    def n(v, mu, s):
        return math.exp(-((v - mu) ** 2) / (2 * s * s)) / (math.sqrt(2 * math.pi) * s)

    return gamma * ((1 + hh) * n(x, 0, sigma) - hh * n(x, sigma, scale * sigma) - hh * n(x, -sigma, scale * sigma))


def test_multi_gaussian_surrogate_values():
    xs = [-1.0, -0.25, 0.0, 0.5, 2.0]
    grads, spikes = surrogate_grad("alif", xs)
    assert grads == pytest.approx([mg_reference(v) for v in xs], rel=1e-5)
    assert mg_reference(0.0) == pytest.approx(0.439111, abs=1e-5)  # by hand
    assert spikes == [0, 0, 0, 1, 1]  # strict: x = 0 does not fire
    assert MultiGaussian().derivative(torch.tensor(3.0)) < 0  # the negative side lobes


def test_unknown_surrogate_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown surrogate 'nope'"):
        get_surrogate("nope")
