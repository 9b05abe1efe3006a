"""Tests for the inbound SMTP protocol."""
