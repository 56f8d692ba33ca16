"""The published runs' settings (read by experiments/reproduce.py)."""
