"""projdeploy: one big projectable transformer -> many small on-device models.

Importing this package is cheap; heavy dependencies (torch, executorch,
coremltools, onnxruntime) are imported inside the functions that need them.
"""

__version__ = "0.1.0"
