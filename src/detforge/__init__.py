"""detforge: from a folder of labelled images to a trained, measured, deployed object detector."""

__version__ = "0.1.0"
