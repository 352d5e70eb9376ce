"""The local PEFT backend: `provider="local"` (see docs/providers/local.md).

Importing this package imports no torch: the notebook side only reads the run folder; the
worker process does the training.
"""

from finetune_hub.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
