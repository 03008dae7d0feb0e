"""The partner shop: partners, catalog, pricing, group buying, checkout, orders, support."""
