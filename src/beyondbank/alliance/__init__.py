"""The merchant alliance: taxonomy, circles, merchants, admission, membership, relationship management."""
