"""Tests of chfw/shared/web, mirroring src/."""
