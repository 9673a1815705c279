"""Model files: `save` / `load` (portable .npz with a JSON header, or safetensors for a
``.safetensors`` path; `pynn.io.header` is what both say about the model). Depends on the model
layer, never the reverse."""
from .checkpoint import ModelCheckpoint
from .files import ModelFileError, load, save

__all__ = ["ModelCheckpoint", "ModelFileError", "load", "save"]
