"""Partner webhooks: the transactional outbox, Standard Webhooks signatures, delivery with retries."""
