"""Plotly figure builders, one module per chapter. Each returns a ``go.Figure`` whose sliders were
precomputed at build time, and takes its data from a function that the tests check."""
