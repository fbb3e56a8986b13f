"""Evaluation: cached test outputs, the metric registry, identity / attribute encoders, tables.

    from pairlab.eval import translate_test_set, evaluate_runs, format_table, REGISTRY

The core of each piece lives in its module: ``outputs`` (the cache), ``metrics`` (the registry and the context),
``encoders`` (FaceNet / lab identity encoder, attribute classifiers), ``stats`` (bootstrap and seeds),
``evaluate`` (runs -> metrics.json and tables), ``bench`` (``python -m pairlab bench eval``).
"""
from .evaluate import aggregate_seeds, evaluate_output_set, evaluate_runs, format_table, metrics_table, read_metrics
from .metrics import REGISTRY, EvalContext, Metric, get_metrics, register
from .outputs import OutputItem, OutputSet, translate_test_set
from .stats import bootstrap_ci, seed_summary

__all__ = ["REGISTRY", "EvalContext", "Metric", "OutputItem", "OutputSet", "aggregate_seeds", "bootstrap_ci",
           "evaluate_output_set", "evaluate_runs", "format_table", "get_metrics", "metrics_table", "read_metrics",
           "register", "seed_summary", "translate_test_set"]
