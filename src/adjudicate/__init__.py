"""adjudicate: fast, exact claims adjudication for Chinese basic medical insurance (基本医疗保险).

The flow, one module each: ``inputs`` (read and check) → ``encode`` (join,
catalogue lookup, order) → ``_core`` (compiled kernel) → ``outputs``
(settlements, lines, rejected, summary); ``policy`` loads the rules from
versioned TOML files in ``policies/``.
"""

__version__ = "0.1.0"
