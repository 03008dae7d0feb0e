"""Group buying: campaigns whose unit price falls as customers join, closed by an idempotent job."""
