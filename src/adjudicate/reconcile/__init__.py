"""Year-end reconciliation (contract §5 ``adjudicate reconcile``; schemes.md §7–§9).

- :mod:`.provider`: provider quota settlement 定额结算 with the corridor;
- :mod:`.funds`: fund statement 收支 / 结余 / 备付能力;
- :mod:`.ledger`: personal-account ledger 个人账户 and next year's credit;
- :mod:`.rules`: the corridor's numbers, read from ``settlement-rules.toml``
  (or ``--rules FILE``); the account credit is the policy's ``[account.credit]``;
  no scheme number lives in this package's code;
- :mod:`.tables`: the input tables (settlements, income, opening, advances);
- :mod:`.year_end`: the whole reconciliation as one call (the command is
  ``cli/reconcile.py``).
"""

from .year_end import reconcile

__all__ = ["reconcile"]
