"""Tests for the tap layer: role options, service trees, the all-in-one composition."""
