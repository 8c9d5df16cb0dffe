"""``python -m adjudicate.cli``: the same as the ``adjudicate`` script."""

from . import main

main()
