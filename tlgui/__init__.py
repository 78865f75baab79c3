"""tlgui: transfer learning on your own images, with a window onto what the network does."""

__version__ = "0.1.0"
