"""The autoscaler: a pure policy and a thin controller."""
