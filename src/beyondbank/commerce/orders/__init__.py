"""Carts, checkout, payment, orders and their state machine, and the bank's commission on them."""
