"""Identity and access: staff and merchant users, partner API clients, customers arriving by SSO."""
