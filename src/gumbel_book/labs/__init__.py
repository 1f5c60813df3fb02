"""The chapters' labs: one module per chapter, named after its page in ``book/``.

A lab computes what a chapter shows (experiments, tables, data for figures); :mod:`gumbel_book.figures`
draws it and :mod:`gumbel_book.widgets` makes it live. Labs import the core library below them, never
the figures, widgets or exercises above.
"""
