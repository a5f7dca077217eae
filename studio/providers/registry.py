"""Finding a provider's code by its name (names.py lists the names).

A provider's package exports its class as `studio.providers.<name>.client.PROVIDER` and its
settings as `studio.providers.<name>.config.SETTINGS`; both are imported on first use, so a
new provider needs no line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from studio.providers.names import LABELS, label

if TYPE_CHECKING:
    from studio.environment import ListSetting, Setting
    from studio.providers.base import Provider
    from studio.providers.capabilities import Capabilities

__all__ = [
    "LABELS",
    "capabilities_of",
    "get_provider",
    "label",
    "provider_class",
    "provider_classes",
    "provider_settings",
]

_classes: dict[str, type[Provider]] = {}


def provider_class(name: str) -> type[Provider]:
    if name not in LABELS:
        raise LookupError(f"There is no provider called {name!r}.")
    if name not in _classes:
        _classes[name] = import_module(f"studio.providers.{name}.client").PROVIDER
    return _classes[name]


def get_provider(name: str) -> Provider:
    return provider_class(name)()


def provider_classes() -> dict[str, type[Provider]]:
    """Every provider's class, in the listed order."""
    return {name: provider_class(name) for name in LABELS}


def capabilities_of(name: str) -> Capabilities:
    """What the provider `name` can make (LookupError for a name Studio does not know)."""
    return provider_class(name).capabilities


def provider_settings() -> list[Setting | ListSetting]:
    """Every setting a provider declares, for studio/settings.py to read from the environment
    (so this imports only the providers' config modules, which need no Django)."""
    found: list[Setting | ListSetting] = []
    for name in LABELS:
        found.extend(import_module(f"studio.providers.{name}.config").SETTINGS)
    return found
