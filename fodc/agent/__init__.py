"""FODC agent: one per BanyanDB node host."""
