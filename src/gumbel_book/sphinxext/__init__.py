"""The book's Sphinx extensions, named in ``_config.yml``: :mod:`.offline` (plotly.js and MathJax served by
the book itself), :mod:`.notebooks` (downloads, Colab and Binder buttons) and :mod:`.markers` (course
markers hidden from the HTML book)."""
