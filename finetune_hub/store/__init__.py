"""The job store: every job, state change, event and deployment, secret-free.

`JobStore` (job_store.py) is the public face; records (records.py), the no-secrets rule
(secret_policy.py) and the SQLite tables (sqlite.py) sit below it.

>>> from finetune_hub.store import JobStore  # doctest: +SKIP
>>> JobStore().list(status="running")  # doctest: +SKIP
"""

from finetune_hub.store.job_store import (
    HOME_ENV,
    DeploymentNotFound,
    JobExists,
    JobNotFound,
    JobStore,
    default_home,
)
from finetune_hub.store.records import (
    DeploymentRecord,
    JobRecord,
    Transition,
    new_deployment_id,
    new_job_id,
)
from finetune_hub.store.secret_policy import (
    CREDENTIAL_SOURCES,
    SecretRefusedError,
    check_credentials,
    check_secret_free,
    is_secret_key,
)

__all__ = [
    "CREDENTIAL_SOURCES",
    "HOME_ENV",
    "DeploymentNotFound",
    "DeploymentRecord",
    "JobExists",
    "JobNotFound",
    "JobRecord",
    "JobStore",
    "SecretRefusedError",
    "Transition",
    "check_credentials",
    "check_secret_free",
    "default_home",
    "is_secret_key",
    "new_deployment_id",
    "new_job_id",
]
