"""A seeded synthetic stand-in for the Spiking Heidelberg Digits (SHD) input, and an ALIF network
calibrated on it: what ``benchmarks/bench_shd.py`` measures hardware on (SHD itself cannot be
downloaded here). NumPy only.

The stream (:func:`shd_like_events`): ``(samples, steps, channels)`` spikes, 0 or 1 per channel per
time bin, default 250 bins of 4 ms (SHD's usual binning of about one second) on 700 channels.
SHD's spikes come from a cochlea model (Lauscher: hair cells, then bushy cells) driven by spoken
digits (Cramer et al. 2020, IEEE TNNLS, doi 10.1109/TNNLS.2020.3044364). What this generator takes
from that, and what it assumes (:class:`ShdLikeRates` holds every figure):

* a silent lead-in, then one utterance of 0.5-0.9 s (SHD recordings last roughly 0.6-1.1 s in all,
  silence included), made of 1-3 syllables (the digits 0-9 in English and German have 1-3);
* in each syllable a few formant-like bands of neighbouring channels fire (the cochlea maps
  frequency to channel), with an onset burst (bushy cells respond most strongly at onsets): so a
  channel fires in bursts, and most spikes fall in a subset of the channels;
* a low spontaneous rate everywhere;
* the mean spike count per sample: ``events_per_sample`` (default 8,000, i.e. 32 active channels per
  4 ms step over the 250 steps, 4.6 % of the 700 x 250 bins), drawn per sample with a spread. This
  figure is an assumption: SHD samples hold spikes in the thousands to about ten thousand (an order
  of magnitude read from SHD's published rasters, not measured here), and at one spike per channel
  per bin a binned sample cannot hold more than its spikes.

:func:`stream_statistics` measures what a stream holds (events per step, peak, channel
concentration, burstiness), so tests and the benchmark can report it.

The network (:func:`calibrated_alif_network`): spike inputs -> ALIF layers (SRNN convention,
CONTRACT.md 3.4) with the given spans -> a leaky readout, as a :class:`~skipcore.golden.artifact.Artifact`
built on :func:`~skipcore.golden.random.random_artifact` (structure and widths), with Gaussian
integer weights, SRNN's time constants (membrane 20 ms, adaptation 200 ms, readout 20 ms, at the
bin width) as integer decays, and each layer's threshold ``b0`` (and ``beta = b0``: the adaptive
threshold can at most double) found by bisection on the golden model so that the layer fires at
its target rate per neuron per step over the stream.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from skipcore.errors import ConfigError

__all__ = ["ShdLikeRates", "shd_like_events", "stream_statistics", "calibrated_alif_network", "Calibration",
           "layer_rates"]


@dataclass(frozen=True)
class ShdLikeRates:
    """Every figure of the synthetic stream (see the module docstring for where each comes from)."""

    steps: int = 250  #: time bins (250 x 4 ms = 1 s)
    channels: int = 700  #: SHD's cochlea channels
    bin_ms: float = 4.0
    events_per_sample: float = 8000.0  #: mean input events (channel x bin with a spike) per sample
    events_spread: float = 0.3  #: per-sample factor exp(N(0, spread)) on the count
    onset_ms: tuple[float, float] = (20.0, 120.0)  #: silent lead-in, uniform
    utterance_ms: tuple[float, float] = (500.0, 900.0)  #: utterance length, uniform
    syllables: tuple[int, int] = (1, 3)  #: syllables per utterance, uniform, inclusive
    bands: tuple[int, int] = (3, 5)  #: formant-like bands per syllable, uniform, inclusive
    band_width: tuple[float, float] = (8.0, 30.0)  #: Gaussian band width (channels, sigma), uniform
    band_drift: float = 40.0  #: how far a band centre moves over a syllable (channels, sigma)
    onset_gain: float = 2.0  #: extra drive at a syllable onset, decaying with ``onset_ms_decay``
    onset_ms_decay: float = 20.0
    spontaneous: float = 0.001  #: spike probability per channel per bin outside the bands
    max_probability: float = 0.9  #: cap on a bin's spike probability

    def __post_init__(self) -> None:
        for name in ("steps", "channels"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"ShdLikeRates.{name} must be a positive integer, not {getattr(self, name)!r}")
        if not self.events_per_sample > 0:
            raise ConfigError(f"ShdLikeRates.events_per_sample must be positive, not {self.events_per_sample!r}")
        if self.events_per_sample > self.max_probability * self.steps * self.channels:
            raise ConfigError(f"ShdLikeRates.events_per_sample {self.events_per_sample:g} exceeds what "
                              f"{self.steps} x {self.channels} bins can hold; lower it")
        if not (0 <= self.spontaneous < self.max_probability <= 1):
            raise ConfigError("ShdLikeRates needs 0 <= spontaneous < max_probability <= 1")


def _syllable_drive(rng, r: ShdLikeRates, t_ms: np.ndarray, chan: np.ndarray) -> np.ndarray:
    """Unnormalised drive (T, C) of one utterance: syllables x formant bands with onset bursts."""
    drive = np.zeros((len(t_ms), len(chan)))
    start = rng.uniform(*r.onset_ms)
    length = rng.uniform(*r.utterance_ms)
    n_syl = int(rng.integers(r.syllables[0], r.syllables[1] + 1))
    # syllable boundaries: random split of the utterance, each at least a fifth of an even share
    cuts = np.sort(rng.uniform(0, 1, n_syl - 1))
    edges = start + length * np.concatenate([[0.0], cuts, [1.0]])
    for a, b in zip(edges[:-1], edges[1:]):
        dur = max(b - a, 1e-3)
        phase = np.clip((t_ms - a) / dur, 0.0, 1.0)
        inside = (t_ms >= a) & (t_ms < b)
        envelope = np.where(inside, np.sin(np.pi * phase) ** 0.5, 0.0)
        envelope *= 1.0 + r.onset_gain * np.exp(-np.clip(t_ms - a, 0, None) / r.onset_ms_decay) * inside
        for _ in range(int(rng.integers(r.bands[0], r.bands[1] + 1))):
            centre0 = rng.uniform(0, len(chan))
            centre = centre0 + rng.normal(0, r.band_drift) * phase  # the band glides over the syllable
            width = rng.uniform(*r.band_width)
            gain = rng.uniform(0.5, 1.0)
            drive += gain * envelope[:, None] * np.exp(-0.5 * ((chan[None, :] - centre[:, None]) / width) ** 2)
    return drive


def shd_like_events(samples: int, *, seed: int = 0, rates: ShdLikeRates | None = None) -> np.ndarray:
    """``(samples, steps, channels)`` uint8 spikes of a seeded SHD-like stream (module docstring).

    Each sample's bins fire independently with probability ``p[t, c] = min(max_probability,
    spontaneous + k * drive[t, c])``, ``k`` chosen so that the expected count equals the sample's
    drawn count (mean ``events_per_sample``).
    """
    r = rates or ShdLikeRates()
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ConfigError(f"samples must be a positive integer, not {samples!r}")
    rng = np.random.default_rng(seed)
    t_ms = (np.arange(r.steps) + 0.5) * r.bin_ms
    chan = np.arange(r.channels, dtype=float)
    out = np.zeros((int(samples), r.steps, r.channels), dtype=np.uint8)
    background = r.spontaneous * r.steps * r.channels
    for b in range(int(samples)):
        drive = _syllable_drive(rng, r, t_ms, chan)
        want = r.events_per_sample * math.exp(rng.normal(0.0, r.events_spread) - r.events_spread**2 / 2)
        want = min(want, 0.8 * r.max_probability * r.steps * r.channels)
        total = drive.sum()
        k = max(want - background, 0.0) / total if total > 0 else 0.0
        for _ in range(20):  # the cap removes probability; raise k until the expectation is met
            p = np.minimum(r.max_probability, r.spontaneous + k * drive)
            got = p.sum()
            if got >= want * 0.999 or total == 0:
                break
            k *= want / got
        out[b] = rng.random((r.steps, r.channels)) < p
    return out


def stream_statistics(x: np.ndarray, *, bin_ms: float = 4.0) -> dict:
    """What an input stream ``(B, T, C)`` holds: events per sample and per step (mean, 99th
    percentile, max), the fraction of all bins with a spike, how concentrated the spikes are on
    channels (the share held by the busiest 20 % of channels, per sample), the fraction of channels
    that fire at all per sample, and burstiness (the mean run length of consecutive firing bins of
    a channel; 1.0 for isolated spikes)."""
    x = np.asarray(x) != 0
    B, T, C = x.shape
    per_step = x.sum(axis=2)
    per_channel = x.sum(axis=1).astype(float)  # (B, C)
    top = max(1, C // 5)
    top_share = np.sort(per_channel, axis=1)[:, ::-1][:, :top].sum(axis=1) / np.maximum(per_channel.sum(axis=1), 1)
    starts = x[:, 1:, :] & ~x[:, :-1, :]
    runs = starts.sum() + x[:, 0, :].sum()
    return {
        "samples": int(B), "steps": int(T), "channels": int(C), "bin_ms": bin_ms,
        "events_per_sample": float(per_step.sum(axis=1).mean()),
        "events_per_step_mean": float(per_step.mean()),
        "events_per_step_p99": float(np.percentile(per_step, 99)),
        "events_per_step_max": int(per_step.max()),
        "bin_occupancy": float(x.mean()),
        "rate_hz_per_channel": float(x.mean() * 1000.0 / bin_ms),
        "top20pct_channel_share": float(top_share.mean()),
        "channels_active_fraction": float((per_channel > 0).mean()),
        "mean_run_bins": float(x.sum() / runs) if runs else 0.0,
    }


# ------------------------------------------------------------------------------------------------
# the calibrated network


@dataclass
class Calibration:
    """How :func:`calibrated_alif_network` set each layer's threshold, and what it reached."""

    targets: list[float]
    thresholds: list[int]
    rates: list[float]  #: measured spikes per neuron per step over the calibration stream
    weight_sigma: list[tuple[float, float]]  #: (input, recurrent) weight standard deviations
    taus_ms: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def layer_rates(art, x: np.ndarray) -> list[float]:
    """Spikes per neuron per step of every hidden layer on quantised inputs ``x`` (golden model)."""
    from skipcore.golden.model import run

    res = run(art, x, quantized=True)
    steps, batch = x.shape[1], x.shape[0]
    return [float(np.sum(c)) / (steps * batch * layer.neurons) for c, layer in zip(res.spike_counts, art.layers)]


def _decay(tau_ms: np.ndarray, bin_ms: float, decay_bits: int) -> np.ndarray:
    one = 1 << decay_bits
    return np.clip(np.round(np.exp(-bin_ms / tau_ms) * one), 0, one - 1).astype(np.int64)


def calibrated_alif_network(x: np.ndarray, *, hidden: tuple[int, ...] = (128, 128), spans: tuple[int, ...] = (1, 4),
                            classes: int = 20, targets: tuple[float, ...] = (0.08, 0.06), seed: int = 0,
                            weight_bits: int = 8, state_bits: int = 16, bin_ms: float = 4.0,
                            tau_m_ms: tuple[float, float] = (20.0, 5.0),
                            tau_adp_ms: tuple[float, float] = (200.0, 25.0), tau_o_ms: float = 20.0,
                            input_sigma: float | None = None):
    """An ALIF network on spike inputs ``x`` (B, T, C) whose hidden layers fire at ``targets``.

    Returns ``(artifact, calibration)``. Weights are Gaussian integers (input sigma
    ``input_sigma``, default a third of the largest weight; recurrent sigma half of it), clipped
    to ``weight_bits``; membrane and adaptation decays come from per-neuron time constants drawn
    from ``tau_m_ms`` and ``tau_adp_ms`` (mean, sigma; SRNN's initial values) at ``bin_ms``.
    Each layer's threshold (b0, with beta = b0) is the integer whose golden firing rate over ``x``
    is closest to its target, by bisection, layer by layer (a layer's rate depends only on the
    layers before it).
    """
    from skipcore.golden.artifact import Widths
    from skipcore.golden.random import random_artifact

    x = np.asarray(x)
    if x.ndim != 3:
        raise ConfigError(f"calibration inputs must be (samples, steps, channels), not shape {x.shape}")
    if not (len(hidden) == len(spans) == len(targets)) or not hidden:
        raise ConfigError("hidden, spans and targets need one entry per layer")
    if any(not 0 < t < 0.5 for t in targets):
        raise ConfigError(f"target rates must lie in (0, 0.5) spikes per neuron per step, not {targets}")
    rng = np.random.default_rng(seed)
    widths = Widths(weight_bits=weight_bits, state_bits=state_bits)
    art = random_artifact(rng, channels=x.shape[2], layer_sizes=list(hidden), kinds=["alif"] * len(hidden),
                          spans=list(spans), input_kind="spike", widths=widths, readout_kind="leaky",
                          readout_mode="sequence", classes=classes, saturating=False, decay_mode="mult",
                          weight_exps=False)
    wmax = 2 ** (weight_bits - 1) - 1
    smax = 2 ** (state_bits - 1) - 1
    sigma_in = float(input_sigma) if input_sigma is not None else wmax / 3
    gauss = lambda shape, s: np.clip(np.round(rng.normal(0.0, s, shape)), -wmax, wmax).astype(np.int64)  # noqa: E731
    D = widths.decay_bits
    sigmas = []
    for layer in art.layers:
        n = layer.neurons
        layer.w_in = gauss(layer.w_in.shape, sigma_in)
        layer.bias = np.zeros(n, dtype=np.int64)
        if layer.w_rec is not None:
            layer.w_rec = gauss(layer.w_rec.shape, sigma_in / 2)
        layer.decay = _decay(np.clip(rng.normal(*tau_m_ms, n), bin_ms, None), bin_ms, D)
        layer.rho = _decay(np.clip(rng.normal(*tau_adp_ms, n), bin_ms, None), bin_ms, D)
        sigmas.append((sigma_in, sigma_in / 2 if layer.w_rec is not None else 0.0))
    r = art.readout
    r.w = gauss(r.w.shape, sigma_in)
    r.bias = np.zeros(r.classes, dtype=np.int64)
    r.decay = np.full(r.classes, int(_decay(np.array([tau_o_ms]), bin_ms, D)[0]), dtype=np.int64)
    r.skip_steps = 0

    thresholds, rates = [], []
    for index, (layer, target) in enumerate(zip(art.layers, targets)):
        def rate_at(th: int) -> float:
            layer.threshold = np.full(layer.neurons, th, dtype=np.int64)
            layer.beta = np.full(layer.neurons, th, dtype=np.int64)
            return layer_rates(art, x)[index]

        lo, hi = 1, smax // 2  # B = b0 + beta*b <= 2*b0 stays inside the state width
        best = (abs(rate_at(lo) - target), lo)
        while hi - lo > 1:  # the rate falls as the threshold rises
            mid = (lo + hi) // 2
            rate = rate_at(mid)
            best = min(best, (abs(rate - target), mid))
            if rate > target:
                lo = mid
            else:
                hi = mid
        th = best[1]
        rates.append(rate_at(th))
        thresholds.append(th)
    art.provenance = {"source": "skipcore.shd_like.calibrated_alif_network", "seed": seed,
                      "targets": list(targets), "thresholds": thresholds}
    art.validate()
    calib = Calibration(list(targets), thresholds, rates, sigmas,
                        {"membrane": list(tau_m_ms), "adaptation": list(tau_adp_ms), "readout": tau_o_ms,
                         "bin_ms": bin_ms})
    return art, calib
