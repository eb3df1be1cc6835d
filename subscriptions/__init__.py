"""Event topics, the outbox, the broadcaster lifecycle and subscription streams."""
