"""One pass over a training file against resolved rules: `validation` (`fh.validate`), the
scanner's hot loop (`scan`), the report (`report`), hyperparameters (`hyperparams`) and the
rule-aware split (`splitting`)."""
