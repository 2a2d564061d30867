"""Data: the embedded synthetic data set, its pose prior and crowd statistics."""
