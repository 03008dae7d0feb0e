"""Shared foundations: settings, database, money, clock, ids, errors, auth, audit."""
