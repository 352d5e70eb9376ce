"""Providers: each implements the few primitives in `base.Provider`; `TuningJob` owns the flow."""
