"""Tests of `iras.simulation`, one file per module."""
