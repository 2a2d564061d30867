"""PoseDet benchmark and ablation harness."""
__version__ = "0.1.0"
