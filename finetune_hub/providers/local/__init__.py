"""The local PEFT backend: `provider="local"` (see docs/providers/local.md).

Importing this package imports no torch: the notebook side only reads the run folder; the
worker process does the training.

>>> from finetune_hub.providers.local import LocalBackend
>>> LocalBackend.from_options({"output_dir": "runs"}).output_dir
PosixPath('runs')
"""

from finetune_hub.providers.local.backend import LocalBackend
from finetune_hub.providers.local.connection import LocalConnection, LocalOptions

__all__ = ["LocalBackend", "LocalConnection", "LocalOptions"]
