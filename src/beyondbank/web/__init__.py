"""Server-rendered pages for each audience: the bank's console, the merchant portal, the customer app."""
