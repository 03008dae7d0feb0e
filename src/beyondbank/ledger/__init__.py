"""The double-entry ledger: accounts, transactions of balanced postings, holds, balances, checks."""
