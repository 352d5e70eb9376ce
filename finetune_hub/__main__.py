"""`python -m finetune_hub`: the `finetune-hub` command line."""

import sys

from finetune_hub.cli import main

sys.exit(main())
