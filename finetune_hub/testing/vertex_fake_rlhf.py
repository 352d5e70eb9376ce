"""A stand-in for Google's RLHF pipeline template, for tests that submit it to `FakeVertex`.

Google publishes the template compiled (`https://us-kfp.pkg.dev/ml-pipeline/google-cloud-registry/
rlhf-train-template/default`, from google-cloud-pipeline-components
`preview.llm.rlhf_pipeline`). No test can download it, so this module builds a pipeline spec with
the same name and the same parameters (types and defaults as in google-cloud-pipeline-components
2.22.0), and the template's top-level tasks. It is NOT Google's template: it runs nothing except in
the fake, which recognises `pipelineInfo.name == "rlhf-train-template"` and plays the template's
phases (see vertex_fake_pipelines).

    import json
    fake.storage.put("gs://bucket/templates/rlhf.json", json.dumps(rlhf_template()))
"""

from __future__ import annotations

from typing import Any

__all__ = ["RLHF_PARAMETERS", "rlhf_template"]

#: name -> (KFP parameter type, default or None for required, optional?)
RLHF_PARAMETERS: dict[str, tuple[str, Any, bool]] = {
    "prompt_dataset": ("STRING", None, False),
    "preference_dataset": ("STRING", None, False),
    "large_model_reference": ("STRING", None, False),
    "model_display_name": ("STRING", None, True),
    "prompt_sequence_length": ("NUMBER_INTEGER", 512, True),
    "target_sequence_length": ("NUMBER_INTEGER", 64, True),
    "reward_model_learning_rate_multiplier": ("NUMBER_DOUBLE", 1.0, True),
    "reinforcement_learning_rate_multiplier": ("NUMBER_DOUBLE", 1.0, True),
    "reward_model_train_steps": ("NUMBER_INTEGER", 1000, True),
    "reinforcement_learning_train_steps": ("NUMBER_INTEGER", 1000, True),
    "kl_coeff": ("NUMBER_DOUBLE", 0.1, True),
    "instruction": ("STRING", None, True),
    "deploy_model": ("BOOLEAN", True, True),
    "eval_dataset": ("STRING", None, True),
    "project": ("STRING", "{{$.pipeline_google_cloud_project_id}}", True),
    "accelerator_type": ("STRING", "GPU", True),
    "location": ("STRING", "{{$.pipeline_google_cloud_location}}", True),
    "encryption_spec_key_name": ("STRING", "", True),
    "tensorboard_resource_id": ("STRING", "", True),
}
_TASKS = [
    ("validate-pipeline", []),
    ("rlhf-preprocessor", []),
    ("reward-model-graph", ["validate-pipeline", "rlhf-preprocessor"]),
    ("reinforcement-learning-graph", ["reward-model-graph"]),
    ("llm-deployment-graph", ["reinforcement-learning-graph"]),
]


def rlhf_template() -> dict[str, Any]:
    """A KFP pipeline spec (schema 2.1.0) named `rlhf-train-template`, declaring the RLHF
    template's parameters.

    >>> spec = rlhf_template()
    >>> spec["pipelineInfo"]["name"], "kl_coeff" in spec["root"]["inputDefinitions"]["parameters"]
    ('rlhf-train-template', True)
    """
    parameters: dict[str, Any] = {}
    for name, (kind, default, optional) in RLHF_PARAMETERS.items():
        entry: dict[str, Any] = {"parameterType": kind}
        if default is not None:
            entry["defaultValue"] = default
        if optional:
            entry["isOptional"] = True
        parameters[name] = entry
    components = {f"comp-{name}": {"executorLabel": f"exec-{name}"} for name, _ in _TASKS}
    executors = {
        f"exec-{name}": {"container": {"image": "stand-in", "command": ["true"]}}
        for name, _ in _TASKS
    }
    tasks = {
        name: {
            "taskInfo": {"name": name},
            "componentRef": {"name": f"comp-{name}"},
            **({"dependentTasks": deps} if deps else {}),
        }
        for name, deps in _TASKS
    }
    return {
        "pipelineInfo": {
            "name": "rlhf-train-template",
            "description": "Stand-in with the parameters of Google's RLHF template (not Google's).",
        },
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.17.3",
        "components": components,
        "deploymentSpec": {"executors": executors},
        "root": {"dag": {"tasks": tasks}, "inputDefinitions": {"parameters": parameters}},
    }
