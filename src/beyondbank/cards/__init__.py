"""Card-linked benefits: the card feed, merchant resolution, the matching engine and its runs."""
