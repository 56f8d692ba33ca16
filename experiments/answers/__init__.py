"""Each question's measurements and written answer, beside its script in experiments/."""
