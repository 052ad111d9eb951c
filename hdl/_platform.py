"""The platform hooks of the components (duck-typed: hdl/ never imports boards/)."""
from __future__ import annotations


def platform_mapping(platform, hook: str, *args, **kwargs):
    """What ``platform``'s method ``hook`` builds from ``args`` (a vendor primitive in place of the
    generic logic), or None when the platform has no such method or declines (returns None)."""
    method = getattr(platform, hook, None)
    return None if method is None else method(*args, **kwargs)
