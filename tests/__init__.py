"""txpostal's trial test suite; mirrors the postal package."""
