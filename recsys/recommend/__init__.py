"""Serving recommenders: training runs, fold-in of new shoppers, picks, re-ranking, housekeeping."""
