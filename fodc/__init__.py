"""FODC: First Occurrence Data Collection for Apache SkyWalking BanyanDB clusters."""

__version__ = "0.1.0"
