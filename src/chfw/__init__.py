"""chfw: Communications Hub firmware activation alerts (DCC Alert N64/N999)."""

__version__ = "0.1.0"
