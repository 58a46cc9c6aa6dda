"""Projection: turn a big server-side model into a small task model (PN experts, projector, baselines)."""
