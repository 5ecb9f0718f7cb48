"""Streamlit UI helpers shared by app.py and app_pages/ (layout, cached resources, charts)."""
