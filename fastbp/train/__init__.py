"""Training: the compiled step, the fit loop and what it reports (history, callbacks, learning
rate schedules, diagnostics, progress)."""
