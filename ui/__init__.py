"""Streamlit UI helpers shared by app.py and app_pages/: state.py (the pages and what they share),
components.py (cards, grids, progress), resources.py (caching), charts.py (Plotly figures)."""
