"""The one exception family users see. Each message names the problem and the fix."""


class SkipcoreError(Exception):
    """Base class for every error skipcore reports to a user (the CLI prints it without a traceback)."""


class DatasetError(SkipcoreError, ValueError):
    """A dataset file is missing, malformed, or its values are out of range."""


class ConfigError(SkipcoreError, ValueError):
    """An impossible option or configuration (bit widths, lanes, spans, boards, presets)."""


class ToolError(SkipcoreError, RuntimeError):
    """An external tool (simulator, synthesizer) is missing or failed."""
