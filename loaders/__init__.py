"""Per-request dataloaders per area, and the Loaders container."""
