"""Plain-Python backend layer: models, caching and one module per capability.

Nothing here imports Streamlit, so the same functions serve the app, the
benchmarks and the tests.
"""
