"""Pure models and rules: no I/O, no clock, no randomness, so workflows may use them."""
