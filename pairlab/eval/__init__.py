"""Evaluation: cached test outputs, the metric registry, identity / attribute encoders, tables.

    from pairlab.eval import translate_test_set, evaluate_runs, format_table, REGISTRY

The core of each piece lives in its module: ``outputs`` (the cache), ``metrics`` (the registry and the context),
``encoders`` (FaceNet / lab identity encoder, attribute classifiers), ``stats`` (bootstrap and seeds),
``evaluate`` (runs -> metrics.json and tables), ``bench`` (``python -m pairlab bench eval``).
"""
from .evaluate import (BASELINE_NAME, aggregate_seeds, evaluate_identity, evaluate_output_set, evaluate_runs,
                       format_table, identity_baselines, is_baseline, metrics_table, read_metrics, split_baselines)
from .metrics import REGISTRY, EvalContext, Metric, get_metrics, register
from .outputs import OutputItem, OutputSet, translate_test_set
from .stats import bootstrap_ci, seed_summary

__all__ = ["BASELINE_NAME", "REGISTRY", "EvalContext", "Metric", "OutputItem", "OutputSet", "aggregate_seeds", "bootstrap_ci",
           "evaluate_identity", "evaluate_output_set", "evaluate_runs", "identity_baselines", "is_baseline", "format_table", "get_metrics", "metrics_table", "read_metrics",
           "register", "seed_summary", "split_baselines", "translate_test_set"]
