"""What every process shares: typed settings and the one Temporal client factory."""
