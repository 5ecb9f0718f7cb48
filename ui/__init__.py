"""Streamlit UI helpers shared by app.py and pages/ (layout, cached resources, charts)."""
