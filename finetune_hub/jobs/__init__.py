"""The job lifecycle, written once for every provider: the description (`spec`), `TuningJob`
(`tuning_job`), the tuned model (`model`), deployments (`deployment`) and before/after
evaluation (`evaluation`)."""
