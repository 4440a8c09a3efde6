"""scalinglaw: the reference calculator for how numerical precision changes scaling laws."""

__version__ = "0.1.0"
