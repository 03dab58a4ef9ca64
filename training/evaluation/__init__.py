"""Evaluation of checkpoints: benchmarks, bits per byte, pairwise judges and win rates."""
