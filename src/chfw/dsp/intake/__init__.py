"""The CSP Management Gateway side: where CSPs post CS06 responses and alerts."""

from chfw.dsp.intake.app import create_app

__all__ = ["create_app"]
