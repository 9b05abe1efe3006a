"""Tests for the C{postal} command line."""
