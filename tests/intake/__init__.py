"""Tests for SMTP intake logic."""
