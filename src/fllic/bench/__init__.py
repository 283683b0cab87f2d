"""fllic bench: the paper's comparison, reproducible (see issue 3)."""
