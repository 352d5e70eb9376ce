"""The job store: every job, state change, event and deployment, secret-free.

`JobStore` (job_store.py) is the public face; records (records.py), the no-secrets rule
(secret_policy.py), the SQL written once (tables.py) and the two databases behind it
(database.py: SQLite in sqlite.py, the default; PostgreSQL in postgres.py, by URL) sit below it.
transfer.py copies a store into another and exports one as JSON.

>>> from finetune_hub.store import JobStore  # doctest: +SKIP
>>> JobStore().list(status="running")  # doctest: +SKIP
"""

from finetune_hub.store.database import STORE_URL_ENV
from finetune_hub.store.job_store import (
    HOME_ENV,
    DeploymentNotFound,
    JobExists,
    JobNotFound,
    JobStore,
    default_home,
    default_url,
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
    "STORE_URL_ENV",
    "SecretRefusedError",
    "Transition",
    "check_credentials",
    "check_secret_free",
    "default_home",
    "default_url",
    "is_secret_key",
    "new_deployment_id",
    "new_job_id",
]
