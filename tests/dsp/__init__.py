"""Tests of chfw/dsp, mirroring src/."""
