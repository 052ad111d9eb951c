"""Named training presets reproducing the seed models, and the option overrides.

A preset is a network template (a ``NetworkConfig`` dict without the dataset-dependent fields
``input_channels``/``classes``, which ``network_config`` fills from the dataset) plus a
``TrainConfig``. ``resolve(name, **overrides)`` returns both with the CLI options applied.

Sources: ``reference/seed-models.md`` 1.5-1.7 (ASRC-SNN ``commands.txt``) and 2.2-2.5 (SRNN
scripts). Deviations from the papers are listed in each preset's ``notes``.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

from skipcore.errors import ConfigError

from .config import RECURRENCES, LayerConfig, NetworkConfig, neuron_kinds

__all__ = ["TrainConfig", "Preset", "PRESETS", "get_preset", "resolve", "network_config", "preset_table"]

OPTIMIZERS = ("adam", "adamw", "adamax")
SCHEDULERS = ("onecycle", "step", "linear", "none")


@dataclass
class TrainConfig:
    """How to train. Every field can be overridden from the command line or Python."""

    dataset: str = "mnist1d"  #: dataset name for ``skipcore.datasets.load_dataset``
    data: str | None = None  #: dataset path (``--data``)
    epochs: int = 10
    batch: int = 128
    lr: float = 1e-3  #: learning rate of the weights (max lr for onecycle)
    lr_skip: float = 0.1  #: learning rate of the ASRC span logits (weight decay 0)
    tau_lr_scale: float = 1.0  #: neuron/readout taus use lr * tau_lr_scale (weight decay 0)
    optimizer: str = "adam"  #: adam | adamw | adamax
    weight_decay: float = 0.0  #: for the weights group only
    eps: float = 1e-8
    scheduler: str = "none"  #: onecycle (per epoch) | step | linear (1 - e/epochs) | none
    step_size: int = 100  #: StepLR period in epochs
    gamma: float = 0.5  #: StepLR factor
    tau_decay: float = 0.96  #: ASRC temperature factor per epoch
    grad_clip: float | None = None  #: clip the gradient norm (None: off)
    seed: int = 0
    val_fraction: float = 0.1
    limit: int | None = None  #: cap samples per split (tests, demos)
    eval_batch: int = 256

    def __post_init__(self):
        for name in ("epochs", "batch", "eval_batch", "step_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, not {v!r}")
        for name in ("lr", "lr_skip", "tau_lr_scale", "eps", "gamma"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"{name} must be a positive number, not {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {self.scheduler!r}; choose one of: {', '.join(SCHEDULERS)}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"limit must be a positive integer, not {self.limit!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, not {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training config fields: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass
class Preset:
    name: str
    description: str
    network: dict  #: NetworkConfig fields except input_channels / classes
    train: TrainConfig
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


def _lif(n, recurrence="src", span=1, max_span=1, **kw):
    return dict(neurons=n, kind="lif", recurrence=recurrence, span=span, max_span=max_span, **kw)


def _alif(n, recurrence="src", span=1, **kw):
    return dict(neurons=n, kind="alif", recurrence=recurrence, span=span, **kw)


def _stc(n, recurrence="src", span=1, groups=16, bits=6, **options):
    threshold = options.pop("threshold", 1.0)
    return dict(neurons=n, kind="stc", recurrence=recurrence, span=span, threshold=threshold,
                options=dict(gate_groups=groups, gate_bits=bits, **options))


def _asrc_mnist(k: int, dataset: str) -> dict:
    return dict(
        layers=[_lif(n, "asrc", max_span=k) for n in (64, 128, 128)],
        readout=dict(kind="sum", mode="sequence"),
        dropout=0.0, bias=True, init="default", surrogate="triangle",
    )


def _src_mnist(k: int) -> dict:
    return dict(
        layers=[_lif(n, "src", span=k) for n in (64, 128, 128)],
        readout=dict(kind="sum", mode="sequence"),
        dropout=0.0, bias=True, init="default", surrogate="triangle",
    )


_ASRC_TRAIN = dict(epochs=200, batch=256, lr=1e-3, lr_skip=0.1, optimizer="adamw", weight_decay=0.01,
                   scheduler="onecycle")

PRESETS: dict[str, Preset] = {}


def _add(p: Preset) -> None:
    PRESETS[p.name] = p


_add(Preset(
    "asrc-smnist", "ASRC-SNN S-MNIST: 1-64-128-128-10 LIF, ASRC K=41, sum readout",
    _asrc_mnist(41, "smnist"), TrainConfig(dataset="smnist", **_ASRC_TRAIN),
    notes="ASRC commands.txt; three param groups of one AdamW instead of three optimizers",
    tags=("paper",)))
_add(Preset(
    "asrc-psmnist", "ASRC-SNN PS-MNIST: 1-64-128-128-10 LIF, ASRC K=51, sum readout",
    _asrc_mnist(51, "psmnist"), TrainConfig(dataset="psmnist", **_ASRC_TRAIN),
    notes="ASRC commands.txt (DelRec re-run: 95.77 %)", tags=("paper",)))
_add(Preset(
    "src-smnist", "SRC-SNN S-MNIST: 1-64-128-128-10 LIF, SRC k=16",
    _src_mnist(16), TrainConfig(dataset="smnist", **_ASRC_TRAIN), tags=("paper",)))
_add(Preset(
    "src-psmnist", "SRC-SNN PS-MNIST: 1-64-128-128-10 LIF, SRC k=12",
    _src_mnist(12), TrainConfig(dataset="psmnist", **_ASRC_TRAIN), tags=("paper",)))
_add(Preset(
    "srnn-ecg", "SRNN ECG (QTDB): 4 -> R36 LIF (SRNN convention, beta 0) -> 6 leaky, per step",
    dict(
        layers=[_alif(36, "src", span=1, b0=0.1, beta=0.0, tau_m=(20.0, 0.0), tau_adp=(7.0, 0.0))],
        readout=dict(kind="leaky", mode="per_step", tau_o=(20.0, 0.0)),
        dropout=0.0, bias=True, init="xavier", surrogate="multi_gaussian",
    ),
    TrainConfig(dataset="ecg", epochs=400, batch=64, lr=1e-2, optimizer="adam", scheduler="step",
                step_size=100, gamma=0.5, tau_lr_scale=3.0),
    notes=("ECG/adapt_srnn script: hidden non-adaptive (isAdapt=0), b0 0.1 (the published checkpoint "
           "needs 0.1), taus const; output is a leaky integrator here (SRNN: adaptive spiking output "
           "read through its membrane); one tau lr scale (x3) for hidden and readout taus (SRNN: x3/x2)"),
    tags=("paper",)))
_add(Preset(
    "srnn-ecg-spiking",
    "SRNN ECG (QTDB) as published: 4 -> R36 LIF (beta 0) -> 6 spiking ALIF outputs, membrane per step",
    dict(
        layers=[_alif(36, "src", span=1, b0=0.1, beta=0.0, tau_m=(20.0, 0.0), tau_adp=(7.0, 0.0))],
        readout=dict(kind="alif", mode="per_step", tau_o=(20.0, 0.0),
                     options=dict(b0=0.01, beta=1.8, tau_adp=[100.0, 0.0])),
        dropout=0.0, bias=True, init="xavier", surrogate="multi_gaussian",
    ),
    TrainConfig(dataset="ecg", epochs=400, batch=64, lr=1e-2, optimizer="adam", scheduler="step",
                step_size=100, gamma=0.5, tau_lr_scale=3.0),
    notes=("srnn-ecg with the SRNN authors' output: an adaptive spiking ALIF layer (tau_m 20, tau_adp 100, "
           "b0 0.01, beta 1.8) whose membrane u is read at every step (CONTRACT.md 4.3)"),
    tags=("paper",)))
_add(Preset(
    "srnn-psmnist", "SRNN PS-MNIST: 1 -> R64 - R256 - D256 ALIF -> 10 leaky, sequence",
    dict(
        layers=[_alif(64, "src", 1, tau_m=(20.0, 5.0), tau_adp=(200.0, 25.0)),
                _alif(256, "src", 1, tau_m=(20.0, 5.0), tau_adp=(200.0, 25.0)),
                _alif(256, "none", 0, tau_m=(20.0, 5.0), tau_adp=(200.0, 25.0))],
        readout=dict(kind="leaky", mode="sequence", tau_o=(20.0, 5.0)),
        dropout=0.0, bias=True, init="xavier", surrogate="multi_gaussian",
    ),
    TrainConfig(dataset="psmnist", epochs=200, batch=300, lr=8e-3, optimizer="adamax", scheduler="linear",
                tau_lr_scale=2.0),
    notes=("NMI psmnist-gpu-tbptt: input is the raw pixel (1 channel, not the binarised 4-pixel window), "
           "full BPTT (no truncation), leaky readout argmax at the last step (SRNN: spiking ALIF output, "
           "spike count), b0 0.1 (script: 0.01), orthogonal recurrent init (script: zeros)"),
    tags=("paper",)))

# MNIST-1D: fast presets (a few minutes on 2 CPU cores); GRU reference 91 %.
_MNIST1D_TRAIN = dict(dataset="mnist1d", batch=64, optimizer="adamw", weight_decay=0.01, scheduler="onecycle",
                      lr_skip=0.1)
_add(Preset(
    "mnist1d-lif-src", "MNIST-1D: 1 -> 128 LIF (k=1) -> 128 LIF (SRC k=2) -> 10 sum",
    dict(layers=[_lif(128, "src", span=1), _lif(128, "src", span=2)],
         readout=dict(kind="sum", mode="sequence"), dropout=0.1, bias=True, init="default",
         surrogate="triangle"),
    TrainConfig(epochs=60, lr=3e-3, **_MNIST1D_TRAIN), tags=("fast",)))
_add(Preset(
    "mnist1d-lif-asrc", "MNIST-1D: 1 -> 128 -> 128 LIF, ASRC K=8 -> 10 sum",
    dict(layers=[_lif(128, "asrc", max_span=8), _lif(128, "asrc", max_span=8)],
         readout=dict(kind="sum", mode="sequence"), dropout=0.1, bias=True, init="default",
         surrogate="triangle"),
    TrainConfig(epochs=100, lr=3e-3, **_MNIST1D_TRAIN),
    notes="100 epochs so the temperature anneals to 0.017 (60 epochs: 91.7 % test, 100: 92.4 %)",
    tags=("fast",)))
_add(Preset(
    "mnist1d-alif", "MNIST-1D: 1 -> R128 -> R128 ALIF (SRNN convention) -> 10 sum",
    dict(layers=[_alif(128, "src", 1, b0=0.5, beta=1.8, tau_m=(2.0, 0.5), tau_adp=(20.0, 5.0)),
                 _alif(128, "src", 1, b0=0.5, beta=1.8, tau_m=(2.0, 0.5), tau_adp=(20.0, 5.0))],
         readout=dict(kind="sum", mode="sequence"), dropout=0.1, bias=True, init="default",
         surrogate="multi_gaussian"),
    TrainConfig(epochs=60, lr=5e-3, tau_lr_scale=2.0, **_MNIST1D_TRAIN),
    notes=("tuned on MNIST-1D: short taus (tau_m 2, tau_adp 20), b0 0.5 and the sum readout (94.4 % test; "
           "b0 1.0: 93.1 %); the SRNN leaky readout (argmax of m at the last step) and tau_m 10-20 reached "
           "only 42-55 % here"),
    tags=("fast",)))
_add(Preset(
    "mnist1d-stc", "MNIST-1D: 1 -> 128 STC-LIF (k=1) -> 128 STC-LIF (SRC k=2) -> 10 sum, gates in 16 groups",
    dict(layers=[_stc(128, "src", span=1), _stc(128, "src", span=2)],
         readout=dict(kind="sum", mode="sequence"), dropout=0.1, bias=True, init="default",
         surrogate="sigmoid"),
    TrainConfig(epochs=60, lr=3e-3, **_MNIST1D_TRAIN),
    notes=("mnist1d-lif-src with STC-LIF neurons (Wang & Yu 2024, dense form): gates 1 + tanh(W S[t-1] + c) "
           "of the own previous spikes through 16-group block-diagonal matrices (the paper's grouped "
           "convolutions use 16 groups) plus per-neuron biases c (the paper's GroupNorm shift; c_a starts "
           "at -1, a leak: without it silent neurons never leak and 20 epochs reach 60 %), sigmoid "
           "surrogate (alpha 4), threshold 1"),
    tags=("fast",)))
_add(Preset(
    "ecg-stc", "ECG (QTDB): 4 -> R36 STC-LIF (one gate weight per neuron) -> 6 leaky, per step",
    dict(
        # G = 1 + tanh(-1.83) = 0.05 scales the input as SRNN's (1 - alpha) = 0.049 does, so threshold
        # 0.1 and the sigmoid surrogate sit where srnn-ecg's b0 0.1 and its surrogate sit; A = 0.54
        # for a silent neuron; the gate weights start at 0 (see notes)
        layers=[_stc(36, "src", span=1, groups=36, bits=8, threshold=0.1, gate_bias_a=-0.5, gate_bias_g=-1.83,
                     gate_init=0.0, gate_a_max=0.95, gate_detach=True)],
        readout=dict(kind="leaky", mode="per_step", tau_o=(20.0, 0.0)),
        dropout=0.0, bias=True, init="xavier", surrogate="sigmoid",
    ),
    TrainConfig(dataset="ecg", epochs=400, batch=64, lr=1e-2, optimizer="adam", scheduler="step",
                step_size=100, gamma=0.5, tau_lr_scale=3.0),
    notes=("srnn-ecg with STC-LIF hidden neurons, threshold 0.1 like srnn-ecg's b0. Gates: c_g starts at "
           "-1.83 (G = 0.05, SRNN's input factor 1 - alpha; with G = 1 the currents are 20x the threshold, "
           "45 % of the neurons fire at every step, and lr 1e-2 diverged at epoch 5), c_a at -0.5 "
           "(A = 0.54 when silent; -1: slower start, -0.05: diverged in epoch 1), gate weights at 0, and "
           "A kept at or below 0.95 in training (srnn-ecg's alpha, tau 20) (gate_a_max): a neuron that fires at every step with "
           "A = 1 + tanh(w_a + c_a) > 1 grows its membrane geometrically over the 1301 steps (inf, then "
           "NaN gradients); without the bound, training drifted A past 1 and diverged at epoch 6. "
           "S[t-1] is detached inside the gates (gate_detach, the paper's gradient_detach): with A <= 0.97 "
           "and no detach the gradient through w_a tanh' V still grew until it was not finite at epoch 19. "
           "8 gate bits: A and G keep steps of 1/32 in their tanh input"),
    tags=("fast",)))


def get_preset(name: str) -> Preset:
    try:
        return copy.deepcopy(PRESETS[name])
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def _int_list(value, what: str) -> list[int]:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            value = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(f"{what} must be a comma-separated list of integers, not {value!r}") from None
    value = list(value)
    if not value or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ConfigError(f"{what} must be a non-empty list of integers, not {value!r}")
    return value


def resolve(name: str, *, layers=None, spans=None, max_span=None, neuron=None, recurrence=None,
            **train_overrides) -> tuple[dict, TrainConfig]:
    """Apply overrides to a preset. Returns (network template dict, TrainConfig).

    ``layers``: neurons per layer ("128,128" or a list; extra layers copy the last one);
    ``spans``: fixed SRC span per layer (0 = no recurrence); ``max_span``: ASRC with K candidates
    on every layer; ``neuron``: a registered kind ("lif", "alif", ...) on every layer; ``recurrence``: "none", "src"
    or "asrc" on every layer; any ``TrainConfig`` field (None values are ignored).
    """
    preset = get_preset(name)
    net = copy.deepcopy(preset.network)
    layer_dicts = net["layers"]
    if layers is not None:
        sizes = _int_list(layers, "--layers")
        if any(s < 1 for s in sizes):
            raise ConfigError(f"--layers needs positive neuron counts, not {layers!r}")
        layer_dicts = [dict(layer_dicts[min(i, len(layer_dicts) - 1)], neurons=s) for i, s in enumerate(sizes)]
    if neuron is not None:
        if neuron not in neuron_kinds():
            raise ConfigError(f"unknown neuron kind {neuron!r}; choose one of: {', '.join(neuron_kinds())}")
        for d in layer_dicts:
            if d["kind"] != neuron:
                d["kind"] = neuron
                from .kinds import get as get_kind

                net["surrogate"] = get_kind(neuron).surrogate
    if recurrence is not None:
        if recurrence not in RECURRENCES:
            raise ConfigError(f"unknown recurrence {recurrence!r}; choose one of: {', '.join(RECURRENCES)}")
        for d in layer_dicts:
            d["recurrence"] = recurrence
            if recurrence == "src" and d.get("span", 0) < 1:
                d["span"] = 1
            if recurrence == "asrc" and d.get("max_span", 1) < 2:
                d["max_span"] = max(2, d.get("span", 1))
    if spans is not None:
        ks = _int_list(spans, "--spans")
        if len(ks) != len(layer_dicts):
            raise ConfigError(f"--spans gives {len(ks)} spans for {len(layer_dicts)} layers")
        for d, k in zip(layer_dicts, ks):
            if k < 0:
                raise ConfigError(f"--spans must be >= 0, not {k}")
            d["recurrence"], d["span"] = ("src", k) if k > 0 else ("none", 0)
    if max_span is not None:
        if isinstance(max_span, bool) or not isinstance(max_span, int) or max_span < 1:
            raise ConfigError(f"--max-span must be a positive integer, not {max_span!r}")
        for d in layer_dicts:
            d["recurrence"], d["max_span"] = "asrc", max_span
    for d in layer_dicts:
        LayerConfig(**d)  # validate early, with the layer's own message
    net["layers"] = layer_dicts
    train = preset.train.to_dict()
    for key, value in train_overrides.items():
        if key not in train:
            raise ConfigError(f"unknown training option {key!r}")
        if value is not None:
            train[key] = value
    return net, TrainConfig(**train)


def network_config(template: dict, info) -> NetworkConfig:
    """Complete a network template with the dataset's channels, classes and readout mode."""
    d = copy.deepcopy(template)
    d["input_channels"] = int(info.channels)
    d["classes"] = int(info.classes)
    readout = dict(d.get("readout", {}))
    readout["mode"] = "per_step" if info.per_step else "sequence"
    readout["skip_steps"] = int(info.skip_steps) if info.per_step else 0
    d["readout"] = readout
    return NetworkConfig.from_dict(d)


def preset_table() -> list[dict]:
    """One row per preset (for docs and ``skipcore train --list``)."""
    rows = []
    for p in PRESETS.values():
        layers = p.network["layers"]
        arch = " - ".join(
            f"{l['kind'].upper()}{l['neurons']}"
            + {"none": "", "src": f"/k{l.get('span', 1)}", "asrc": f"/K{l.get('max_span', 1)}"}[l["recurrence"]]
            for l in layers
        )
        t = p.train
        rows.append(dict(name=p.name, dataset=t.dataset, layers=arch,
                         readout=f"{p.network['readout']['kind']}", optimizer=t.optimizer, lr=t.lr,
                         scheduler=t.scheduler, batch=t.batch, epochs=t.epochs, description=p.description))
    return rows
