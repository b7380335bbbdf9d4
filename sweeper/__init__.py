"""Sweeper: distributed hyperparameter sweeps for robust fine-tuning of CLIP-style models."""

__version__ = "0.1.0"
