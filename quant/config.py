"""JSON-serialisable network configuration (``NetworkConfig``) with validation.

A ``NetworkConfig`` fully describes a float network: build it with
``quant.network.SpikingNetwork(config)``. ``to_dict()``/``from_dict()`` round-trip through JSON,
which is how checkpoints store it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from skipcore.errors import ConfigError

__all__ = ["LayerConfig", "ReadoutConfig", "NetworkConfig", "RECURRENCES", "neuron_kinds"]


def neuron_kinds() -> tuple[str, ...]:
    """The registered neuron kinds (``quant.kinds``)."""
    from . import kinds

    return kinds.names()

RECURRENCES = ("none", "src", "asrc")
RESETS = ("soft", "hard")
READOUT_MODES = ("sequence", "per_step")
INITS = ("default", "xavier")


def _pair(value, name: str) -> tuple[float, float]:
    try:
        mean, std = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (mean, std), not {value!r}") from None
    return (mean, std)


@dataclass
class LayerConfig:
    """One hidden layer: ``I[t] = Dropout(W_in x[t] + b) + W_rec S[t-k]``."""

    neurons: int  #: N, number of neurons
    kind: str = "lif"  #: a registered neuron kind: "lif" (ASRC-SNN), "alif" (SRNN), "stc" (STC-LIF), ...
    recurrence: str = "src"  #: "none" (k=0), "src" (fixed span), "asrc" (learned span)
    span: int = 1  #: skip span k for "src" (1 = vanilla recurrence)
    max_span: int = 1  #: number of candidate spans K for "asrc" (spans 1..K)
    reset: str = "soft"  #: LIF reset: "soft" (subtract th) or "hard" (to zero)
    lam: float = 0.5  #: LIF decay
    threshold: float = 1.0  #: LIF threshold
    b0: float = 0.1  #: ALIF base threshold
    beta: float = 1.8  #: ALIF adaptation strength (0 = non-adaptive, SRNN convention)
    tau_m: tuple[float, float] = (20.0, 5.0)  #: ALIF membrane tau init (mean, std), steps
    tau_adp: tuple[float, float] = (200.0, 25.0)  #: ALIF adaptation tau init (mean, std)
    learn_taus: bool = True  #: ALIF taus are trainable parameters
    options: dict = field(default_factory=dict)  #: the kind's own settings (e.g. STC gate_groups, gate_bits)

    def __post_init__(self):
        self.tau_m = _pair(self.tau_m, "tau_m")
        self.tau_adp = _pair(self.tau_adp, "tau_adp")
        if not isinstance(self.neurons, int) or isinstance(self.neurons, bool) or self.neurons < 1:
            raise ConfigError(f"layer neuron count must be a positive integer, not {self.neurons!r}")
        if self.kind not in neuron_kinds():
            raise ConfigError(f"unknown neuron kind {self.kind!r}; choose one of: {', '.join(neuron_kinds())}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"layer options must be a dict, not {self.options!r}")
        if self.recurrence not in RECURRENCES:
            raise ConfigError(
                f"unknown recurrence {self.recurrence!r}; choose one of: {', '.join(RECURRENCES)}"
            )
        if self.recurrence == "src" and (not isinstance(self.span, int) or self.span < 1):
            raise ConfigError(f"an SRC layer needs a span >= 1, not {self.span!r} (use recurrence 'none' for 0)")
        if self.recurrence == "asrc" and (not isinstance(self.max_span, int) or self.max_span < 1):
            raise ConfigError(f"an ASRC layer needs max_span >= 1, not {self.max_span!r}")
        if self.reset not in RESETS:
            raise ConfigError(f"unknown reset {self.reset!r}; choose one of: {', '.join(RESETS)}")
        from . import kinds

        kinds.get(self.kind).check_config(self)

    @property
    def depth(self) -> int:
        """Spike history a layer must keep: k for SRC, K for ASRC, 0 without recurrence."""
        return {"none": 0, "src": self.span, "asrc": self.max_span}[self.recurrence]


@dataclass
class ReadoutConfig:
    """Non-spiking readout: ``sum`` (ASRC-SNN) or ``leaky`` integrator (SRNN)."""

    kind: str = "sum"  #: "sum": logits = sum_t (W S[t] + b); "leaky": m = a*m + (1-a)*(W S + b)
    mode: str = "sequence"  #: "sequence": argmax at the last step; "per_step": argmax every step
    tau_o: tuple[float, float] = (20.0, 5.0)  #: leaky readout tau init (mean, std), learnable
    skip_steps: int = 0  #: per_step: steps excluded from loss and accuracy at the start
    options: dict = field(default_factory=dict)  #: the readout kind's own settings (alif: b0, beta, tau_adp)

    def __post_init__(self):
        self.tau_o = _pair(self.tau_o, "tau_o")
        from . import readouts

        readouts.get(self.kind).check_config(self)
        if self.mode not in READOUT_MODES:
            raise ConfigError(f"unknown readout mode {self.mode!r}; choose one of: {', '.join(READOUT_MODES)}")
        if self.skip_steps < 0:
            raise ConfigError(f"skip_steps must be >= 0, not {self.skip_steps}")


@dataclass
class NetworkConfig:
    """The whole float network: input channels -> hidden layers -> readout."""

    input_channels: int  #: C, channels per input step
    classes: int  #: M, readout size
    layers: list[LayerConfig] = field(default_factory=list)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    dropout: float = 0.0  #: dropout on W_in x + b, one mask per sequence
    surrogate: str | None = None  #: None: triangle for LIF, multi_gaussian for ALIF
    init: str = "default"  #: "default" (PyTorch Linear) or "xavier" (xavier_uniform, zero bias)
    bias: bool = True  #: hidden layers have a bias

    def __post_init__(self):
        self.layers = [l if isinstance(l, LayerConfig) else LayerConfig(**l) for l in self.layers]
        if not isinstance(self.readout, ReadoutConfig):
            self.readout = ReadoutConfig(**self.readout)
        if not self.layers:
            raise ConfigError("a network needs at least one hidden layer")
        for name in ("input_channels", "classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}; choose one of: {', '.join(INITS)}")
        if self.surrogate is not None:
            from .surrogate import SURROGATES

            if self.surrogate not in SURROGATES:
                raise ConfigError(
                    f"unknown surrogate {self.surrogate!r}; choose one of: {', '.join(SURROGATES)}"
                )

    def to_dict(self) -> dict:
        d = asdict(self)
        for layer in d["layers"]:
            layer["tau_m"] = list(layer["tau_m"])
            layer["tau_adp"] = list(layer["tau_adp"])
        d["readout"]["tau_o"] = list(d["readout"]["tau_o"])
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a network config must be a dict, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown network config fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad network config: {exc}") from None
