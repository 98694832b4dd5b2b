"""Tests of chfw/shared, mirroring src/."""
