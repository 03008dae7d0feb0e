"""Commission contracts, settlement periods and statements, and payouts."""
