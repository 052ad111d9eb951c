"""Constructor argument checks shared by the components (exact messages, no UnusedElaboratable noise)."""
from __future__ import annotations


def reject(component, exc: Exception) -> Exception:
    """Mark a half-built component as deliberately unused and return ``exc`` for ``raise``."""
    component._MustUse__silence = True
    return exc


def check_positive(component, owner: str, **kwargs) -> None:
    """Raise ``TypeError`` unless every keyword value is a positive integer (not a bool)."""
    for name, value in kwargs.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise reject(component, TypeError(f"{owner} {name} must be a positive integer, not {value!r}"))
