"""The screening page's views (Streamlit), called by ``app.py``; :mod:`~molpred.page.labels`
names output columns for people. The only part of molpred that imports Streamlit."""
