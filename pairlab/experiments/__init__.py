"""Experiments: one per result of paper 000 (``python -m pairlab experiment NAME``).

``paper`` holds the paper's own numbers (Tables 1-7) and its claims as data; ``stats`` the torch-free statistics
(intervals over seeds, paired tests across seeds, verdicts, Holm's correction).

    from pairlab.experiments import CLAIMS, claims_for, assess_claims, seed_interval
"""
from .paper import CLAIMS, CONFIGS, EXPERIMENTS, TABLES, Claim, PaperTable, claims_for, paper_comparison, tables_for
from .stats import (HOLDS, NOT_SIGNIFICANT, REVERSED, TOO_FEW, ClaimResult, ImageTest, Interval, SeedTest,
                    assess_claim, assess_claims, holm, image_tests, paired_seed_test, seed_interval, verdict)

__all__ = ["CLAIMS", "CONFIGS", "EXPERIMENTS", "HOLDS", "NOT_SIGNIFICANT", "REVERSED", "TABLES", "TOO_FEW", "Claim",
           "ClaimResult", "ImageTest", "Interval", "PaperTable", "SeedTest", "assess_claim", "assess_claims",
           "claims_for", "holm", "image_tests", "paired_seed_test", "paper_comparison", "seed_interval",
           "tables_for", "verdict"]
