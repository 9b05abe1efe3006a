"""Tests for L{postal.supervisor}, the supervisor's tap and its CLI verbs."""
