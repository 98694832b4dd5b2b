"""Tests of chfw/core, mirroring src/."""
