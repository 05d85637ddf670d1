"""The nightly regeneration: new inputs in, an incremental map, a gated and atomic release out."""
