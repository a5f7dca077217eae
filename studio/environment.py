"""Reading settings from the environment: the helpers studio/settings.py uses, and `Setting`,
which a provider's package uses to declare the settings it reads (studio/providers/<name>/
config.py): its name, default and whether it is a secret.

No Django here: studio/settings.py imports this before Django is set up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int) -> int:
    value = env(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# The names of every setting declared secret: studio/secrets.py scrubs their values from
# what Studio shows and logs.
SECRET_SETTINGS: set[str] = set()


@dataclass(frozen=True)
class Setting:
    """One text setting a provider reads: studio/settings.py reads it from the environment,
    and the provider reads `value` from Django's settings when it runs (so tests and
    operators change it the usual way). A secret is never logged or shown."""

    name: str
    default: str = ""
    secret: bool = False

    def __post_init__(self) -> None:
        if self.secret:
            SECRET_SETTINGS.add(self.name)

    def from_environment(self) -> str:
        return env(self.name, self.default)

    @property
    def value(self) -> str:
        from django.conf import settings

        return str(getattr(settings, self.name))


@dataclass(frozen=True)
class ListSetting:
    """A comma-separated list setting (extra media hosts, say)."""

    name: str
    default: str = ""
    secret: bool = False

    def __post_init__(self) -> None:
        if self.secret:
            SECRET_SETTINGS.add(self.name)

    def from_environment(self) -> list[str]:
        return env_list(self.name, self.default)

    @property
    def value(self) -> list[str]:
        from django.conf import settings

        value = getattr(settings, self.name)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return [str(item) for item in value]
