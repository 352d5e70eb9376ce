"""finetune_hub: one fine-tuning job description for OpenAI, Bedrock, Vertex AI, Azure AI Foundry
and local PEFT, with the training data checked against the chosen backend's rules first.

>>> import finetune_hub as fh
>>> report = fh.validate("train.jsonl", provider="openai", base_model="gpt-4.1-mini")  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP

Importing this package is cheap: names are loaded on first use, and no provider SDK (openai,
boto3, google-*, azure-*) nor torch is imported until a job needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY = {
    "validate": "finetune_hub.checks.validation:validate",
    "ValidationReport": "finetune_hub.checks.report:ValidationReport",
    "ValidationStats": "finetune_hub.checks.report:ValidationStats",
    "TokenStats": "finetune_hub.checks.report:TokenStats",
    "FileStats": "finetune_hub.checks.report:FileStats",
    "Issue": "finetune_hub.issues:Issue",
    "Severity": "finetune_hub.issues:Severity",
    "DataFormat": "finetune_hub.data.formats:DataFormat",
    "detect_format": "finetune_hub.data.formats:detect_format",
    "read_records": "finetune_hub.data.reader:read_records",
    "convert": "finetune_hub.data.convert:convert",
    "ConversionSummary": "finetune_hub.data.convert:ConversionSummary",
    "split": "finetune_hub.checks.splitting:split",
    "SplitSummary": "finetune_hub.data.split:SplitSummary",
    "check_hyperparameters": "finetune_hub.checks.hyperparams:check_hyperparameters",
    "get_counter": "finetune_hub.data.tokens:get_counter",
    "rules": "finetune_hub.rules",
    "TuningJob": "finetune_hub.jobs.tuning_job:TuningJob",
    "evaluate": "finetune_hub.jobs.evaluation:evaluate",
    "scorers": "finetune_hub.jobs.scorers",
    "wait_all": "finetune_hub.jobs.tuning_job:wait_all",
    "remote_jobs": "finetune_hub.jobs.remote:remote_jobs",
    "RemoteJob": "finetune_hub.jobs.remote:RemoteJob",
    "RemoteJobs": "finetune_hub.jobs.remote:RemoteJobs",
    "refresh_all": "finetune_hub.jobs.refresh:refresh_all",
    "follow_changes": "finetune_hub.jobs.refresh:follow_changes",
    "reap_expired": "finetune_hub.jobs.reap:reap_expired",
    "JobChange": "finetune_hub.jobs.refresh:JobChange",
    "RefreshResult": "finetune_hub.jobs.refresh:RefreshResult",
    "RefreshError": "finetune_hub.jobs.refresh:RefreshError",
    "JobSpec": "finetune_hub.jobs.spec:JobSpec",
    "JobStore": "finetune_hub.store:JobStore",
    "JobStatus": "finetune_hub.status:JobStatus",
    "JobEvent": "finetune_hub.status:JobEvent",
    "MetricPoint": "finetune_hub.status:MetricPoint",
    "Checkpoint": "finetune_hub.status:Checkpoint",
    "TunedModel": "finetune_hub.jobs.model:TunedModel",
    "Deployment": "finetune_hub.jobs.deployment:Deployment",
    "ProviderError": "finetune_hub.errors:ProviderError",
    "UnsupportedOperation": "finetune_hub.errors:UnsupportedOperation",
    "MissingDependencyError": "finetune_hub.errors:MissingDependencyError",
    "OptionsError": "finetune_hub.errors:OptionsError",
    "JobSpecError": "finetune_hub.errors:JobSpecError",
    "ModelNotFoundError": "finetune_hub.errors:ModelNotFoundError",
    "SecretRefusedError": "finetune_hub.errors:SecretRefusedError",
    "JobNotFound": "finetune_hub.errors:JobNotFound",
    "DeploymentNotFound": "finetune_hub.errors:DeploymentNotFound",
    "JobExists": "finetune_hub.errors:JobExists",
    "DeploymentStatus": "finetune_hub.status:DeploymentStatus",
    "DeploymentCost": "finetune_hub.providers.base:DeploymentCost",
    "registry": "finetune_hub.registry",
    "JobFailed": "finetune_hub.errors:JobFailed",
    "WaitTimeout": "finetune_hub.errors:WaitTimeout",
    "CostConfirmationRequired": "finetune_hub.errors:CostConfirmationRequired",
    "CostLimitExceeded": "finetune_hub.errors:CostLimitExceeded",
    "CostEstimate": "finetune_hub.checks.cost:CostEstimate",
    "CostLine": "finetune_hub.checks.cost:CostLine",
    "ServingCost": "finetune_hub.checks.cost:ServingCost",
    "estimate_cost": "finetune_hub.jobs.costing:estimate_cost",
    "job_list": "finetune_hub.jobs.display:job_list",
    "JobList": "finetune_hub.jobs.display:JobList",
    "metrics_frame": "finetune_hub.plotting:metrics_frame",
    "loss_figure": "finetune_hub.plotting:loss_figure",
    "FinetuneHubError": "finetune_hub.errors:FinetuneHubError",
    "DataFileError": "finetune_hub.errors:DataFileError",
    "ValidationError": "finetune_hub.errors:ValidationError",
    "RulesError": "finetune_hub.errors:RulesError",
    "ConversionError": "finetune_hub.errors:ConversionError",
    "UnknownProviderError": "finetune_hub.errors:UnknownProviderError",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'finetune_hub' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from finetune_hub import registry, rules
    from finetune_hub.checks.cost import CostEstimate, CostLine, ServingCost
    from finetune_hub.checks.hyperparams import check_hyperparameters
    from finetune_hub.checks.report import FileStats, TokenStats, ValidationReport, ValidationStats
    from finetune_hub.checks.splitting import split
    from finetune_hub.checks.validation import validate
    from finetune_hub.data.convert import ConversionSummary, convert
    from finetune_hub.data.formats import DataFormat, detect_format
    from finetune_hub.data.reader import read_records
    from finetune_hub.data.split import SplitSummary
    from finetune_hub.data.tokens import get_counter
    from finetune_hub.errors import (
        ConversionError,
        CostConfirmationRequired,
        CostLimitExceeded,
        DataFileError,
        DeploymentNotFound,
        FinetuneHubError,
        JobExists,
        JobFailed,
        JobNotFound,
        JobSpecError,
        MissingDependencyError,
        ModelNotFoundError,
        OptionsError,
        ProviderError,
        RulesError,
        SecretRefusedError,
        UnknownProviderError,
        UnsupportedOperation,
        ValidationError,
        WaitTimeout,
    )
    from finetune_hub.issues import Issue, Severity
    from finetune_hub.jobs import scorers
    from finetune_hub.jobs.costing import estimate_cost
    from finetune_hub.jobs.deployment import Deployment
    from finetune_hub.jobs.display import JobList, job_list
    from finetune_hub.jobs.evaluation import evaluate
    from finetune_hub.jobs.model import TunedModel
    from finetune_hub.jobs.reap import reap_expired
    from finetune_hub.jobs.refresh import (
        JobChange,
        RefreshError,
        RefreshResult,
        follow_changes,
        refresh_all,
    )
    from finetune_hub.jobs.remote import RemoteJob, RemoteJobs, remote_jobs
    from finetune_hub.jobs.spec import JobSpec
    from finetune_hub.jobs.tuning_job import TuningJob, wait_all
    from finetune_hub.plotting import loss_figure, metrics_frame
    from finetune_hub.providers.base import DeploymentCost
    from finetune_hub.status import Checkpoint, DeploymentStatus, JobEvent, JobStatus, MetricPoint
    from finetune_hub.store import JobStore
