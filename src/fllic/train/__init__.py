"""Training for FLLIC models. The library never imports this package."""
