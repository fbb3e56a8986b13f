"""pairlab: a lab for implicit pairs in image-to-image translation.

The core library (everything except ``pairlab.ui``) imports without Gradio.
"""
__version__ = "0.1.0"
