"""The SHD-like event stream and the calibrated ALIF network of benchmarks/bench_shd.py (fast sizes)."""
from __future__ import annotations

import numpy as np
import pytest

from skipcore.errors import ConfigError
from skipcore.golden.model import run
from skipcore.shd_like import ShdLikeRates, calibrated_alif_network, layer_rates, shd_like_events, stream_statistics


@pytest.fixture(scope="module")
def stream():
    return shd_like_events(24, seed=3)


def test_stream_shape_and_seed(stream):
    assert stream.shape == (24, 250, 700) and stream.dtype == np.uint8
    assert set(np.unique(stream)) <= {0, 1}
    again = shd_like_events(24, seed=3)
    assert np.array_equal(stream, again)
    assert not np.array_equal(stream[:2], shd_like_events(2, seed=4))


def test_stream_statistics_match_the_chosen_rates(stream):
    stats = stream_statistics(stream)
    # mean count per sample: 8,000 with a log-normal spread of 0.3 (sd of a 24-sample mean ~6 %)
    assert 6800 < stats["events_per_sample"] < 9200
    assert stats["events_per_step_mean"] == pytest.approx(stats["events_per_sample"] / 250)
    # bursts: the busiest step holds several times the mean
    assert stats["events_per_step_max"] > 2 * stats["events_per_step_mean"]
    # most activity in a subset of channels (uniform: 20 %)
    assert stats["top20pct_channel_share"] > 0.45
    # a channel fires in runs of consecutive bins (isolated spikes: 1.0)
    assert stats["mean_run_bins"] > 1.1
    # the silent lead-in (>= 20 ms = 5 bins) holds only spontaneous spikes (0.1 % of bins)
    assert stream[:, :5, :].mean() < 0.005
    assert stream[:, 40:150, :].mean() > 0.03


def test_stream_rates_scale_and_bad_input():
    small = ShdLikeRates(steps=50, channels=64, events_per_sample=300.0)
    x = shd_like_events(40, seed=1, rates=small)
    assert x.shape == (40, 50, 64)
    assert 240 < x.sum(axis=(1, 2)).mean() < 360
    with pytest.raises(ConfigError, match="samples"):
        shd_like_events(0)
    with pytest.raises(ConfigError, match="events_per_sample"):
        ShdLikeRates(steps=10, channels=10, events_per_sample=200.0)


def test_calibration_reaches_its_targets_on_a_tiny_network():
    rates = ShdLikeRates(steps=60, channels=40, events_per_sample=200.0, utterance_ms=(150.0, 200.0))
    x = shd_like_events(12, seed=2, rates=rates).astype(np.int64)
    art, calib = calibrated_alif_network(x, hidden=(12, 10), spans=(1, 2), classes=3, targets=(0.12, 0.08), seed=5)
    assert [layer.kind for layer in art.layers] == ["alif", "alif"]
    assert [layer.span for layer in art.layers] == [1, 2]
    assert art.readout.kind == "leaky" and art.readout.classes == 3 and art.input.kind == "spike"
    assert art.widths.weight_bits == 8 and art.widths.state_bits == 16
    measured = layer_rates(art, x)
    assert measured == calib.rates
    assert measured[0] == pytest.approx(0.12, abs=0.03) and measured[1] == pytest.approx(0.08, abs=0.03)
    # the rates come from the golden model: recount them from its spikes
    gold = run(art, x, traces=True, quantized=True)
    assert measured[1] == pytest.approx(float(gold.spikes[1].mean()))
    # thresholds matter: a higher layer-0 threshold fires less
    art.layers[0].threshold = art.layers[0].threshold * 4
    art.layers[0].beta = art.layers[0].beta * 4
    assert layer_rates(art, x)[0] < measured[0] / 2
    with pytest.raises(ConfigError, match="target"):
        calibrated_alif_network(x, hidden=(4,), spans=(1,), targets=(0.7,))


def test_bench_shd_refuses_bad_options_before_any_work(monkeypatch):
    """benchmarks/bench_shd.py checks its options, the board, the clock and the tools first."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    sys.modules.pop("bench_shd", None)
    import bench_shd

    def refused(*argv):
        with pytest.raises(ConfigError) as info:
            bench_shd.preflight(bench_shd.parse_args(list(argv)))
        return str(info.value)

    assert "--samples must be at least 1" in refused("--samples", "0")
    assert "no synthesis flow" in refused("--board", "generic")
    assert "unknown board" in refused("--board", "nope")
    assert "cannot be made" in refused("--freq", "1000")
    bench_shd.preflight(bench_shd.parse_args(["--board", "generic", "--no-build"]))  # cycles only: no board needed
    assert bench_shd.main(["--samples", "0"]) == 2
