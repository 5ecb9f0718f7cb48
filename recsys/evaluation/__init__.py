"""Measuring recommenders: metrics (pure ranking metrics), stats (intervals, paired tests, the
one significance rule), ranking (full-ranking evaluation of a fitted model), crossval (K-fold
splits), benchmark (timings), summary (the outcome in one sentence) and tables (the results
as the Evaluate page and the command line show them)."""
