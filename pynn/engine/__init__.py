"""The training engine: one loop that every way of training a pynn model drives."""
