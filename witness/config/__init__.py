"""Configuration: :class:`~witness.config.settings.Settings`."""

from witness.config.settings import Settings

__all__ = ["Settings"]
