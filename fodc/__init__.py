"""FODC: First Occurrence Data Collection for Apache SkyWalking BanyanDB clusters."""

__version__ = "0.2.0"
