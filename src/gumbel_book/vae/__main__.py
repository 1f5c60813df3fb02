"""``python -m gumbel_book.vae``: the command line of :mod:`gumbel_book.vae.cli`.

The parser and the commands live in :mod:`.cli`, so that importing the package (which re-exports
:func:`~gumbel_book.vae.cli.main`) never imports this module before ``runpy`` runs it.
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
