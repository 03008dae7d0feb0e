"""Payments through the bank: the gateway protocol and the bank core adapter behind it."""
