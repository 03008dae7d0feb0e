"""After the purchase: support tickets between a customer and a partner, and the NPS survey."""
