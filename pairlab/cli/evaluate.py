"""``evaluate``, ``compare`` and ``features``: metrics tables, the Compare tab's comparison and the feature-space
plot, headless."""
from __future__ import annotations

from .. import lab
from .common import progress_printer


# ------------------------------------------------------------------------------------ evaluate
def cmd_evaluate(args) -> int:
    results = lab.evaluate(args.runs, metrics=args.metrics, checkpoint=args.checkpoint, direction=args.direction,
                           progress=progress_printer("evaluate") if args.progress else None,
                           baseline=not args.no_baseline)
    print(lab.format_table(results, ci=not args.no_ci))
    if args.seeds:
        print("\nover seeds (mean of seed means, 95% t-interval of the seed means):")
        print(lab.format_table(lab.aggregate_seeds(results), ci=not args.no_ci))
    return 0 if any(r["ok"] for r in results) else 2


# ------------------------------------------------------------------------------------ compare
def cmd_compare(args) -> int:
    runs = [lab.open_run(r) for r in args.runs]  # a run that is not there: one sentence before any work
    c = lab.compare(runs, view=args.view, metrics=args.metrics, checkpoint=args.checkpoint, direction=args.direction,
                    order=args.order, aggregate=args.aggregate, rows=args.rows, seed=args.shuffle, page=args.page,
                    outline=args.outline, baseline=not args.no_baseline,
                    progress=progress_printer("compare") if args.progress else None)
    paths = c.export(args.out)
    print(c.table_text())
    print()
    print(c.report(markdown=False))
    if c.grid_info():
        print(f"grid: {c.grid_info()}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0 if c.ok else 2


# ------------------------------------------------------------------------------------ features
def cmd_features(args) -> int:
    request = lab.FeatureRequest(composition=args.composition, runs=tuple(args.runs), encoder=args.encoder,
                                 sigma=args.sigma, source=args.source, task=args.task, direction=args.direction,
                                 checkpoint=args.checkpoint, train_encoder=args.train_encoder,
                                 max_points=args.max_points)
    space = lab.feature_space(request, progress=progress_printer("features"))
    out = args.out or lab.feature_export_dir()
    paths = lab.export_features(space, out)
    print(lab.summary_text(space))
    for problem in space.problems:
        print(f"note: {problem}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0



def add_commands(sub) -> None:
    e = sub.add_parser("evaluate", help="evaluate runs: cached test outputs, metrics with 95%% intervals, a table",
                       description="Translate each run's test set (cached by checkpoint hash), compute the metrics, "
                                   "write metrics.json into each run folder and print a table.")
    e.add_argument("runs", nargs="+", metavar="RUN", help="run folders or run ids under $PAIRLAB_HOME/runs")
    e.add_argument("--metrics", default=None, help="comma-separated metric names (default: every available one)")
    e.add_argument("--checkpoint", default="latest", help="latest (default), an iteration number or a file name")
    e.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA", "both"], help="default AtoB")
    e.add_argument("--seeds", action="store_true", help="also aggregate runs that differ only by seed")
    e.add_argument("--no-ci", action="store_true", help="print means without their intervals")
    e.add_argument("--no-baseline", action="store_true",
        help="leave out the input-unchanged (identity map) row on the same test images")
    e.add_argument("--progress", action="store_true", help="print progress lines")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("compare", help="compare runs headless: the Compare tab's table, plot, grid and exports",
                       description="Evaluate the runs in a view (metrics cached per checkpoint, with the "
                                   "input-unchanged baseline), print the comparison table and write what the Compare "
                                   "tab shows: comparison.csv, comparison.tex, grid.png, plot.html (standalone) and "
                                   "comparison.json.")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run folders or run ids under $PAIRLAB_HOME/runs")
    c.add_argument("--view", default="all", help="the Compare tab's views: all (default, every run), alpha (Tables "
                   "1-3, 5), baselines (Table 4: pseudo-pair recipes) or explicit (Table 7: explicit vs implicit)")
    c.add_argument("--metrics", default=None, help="comma-separated metric names (default: every available one)")
    c.add_argument("--checkpoint", default="latest", help="latest (default), an iteration number or a file name")
    c.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="default AtoB")
    c.add_argument("--order", default="alpha", choices=["alpha", "recipe"],
                   help="order rows and grid columns by measured alpha or by recipe in the 'all' view (default alpha)")
    c.add_argument("--aggregate", action="store_true", help="one table row per group of seeds (mean, t-interval)")
    c.add_argument("--rows", type=int, default=4, help="test samples in the grid (default 4)")
    c.add_argument("--shuffle", type=int, default=0, help="shuffle seed of the grid's samples (default 0)")
    c.add_argument("--in-order", dest="shuffle", action="store_const", const=None,
                   help="the grid's samples in test order instead of shuffled")
    c.add_argument("--page", type=int, default=0, help="page of the grid (default 0, the first)")
    c.add_argument("--outline", action="store_true", help="outline the attribute region on the grid")
    c.add_argument("--no-baseline", action="store_true",
                   help="leave out the input-unchanged (identity map) row on the same test images")
    c.add_argument("--out", default=None, help="output folder (default $PAIRLAB_HOME/cache/compare-exports/<time>)")
    c.add_argument("--progress", action="store_true", help="print progress lines")
    c.set_defaults(func=cmd_compare)

    f = sub.add_parser("features", help="the feature-space plot (paper Figure 9): PCA of learned features, PNG + HTML",
                       description="Fit a PCA on the features of every image of the source (the attribute "
                                   "classifier's penultimate layer, or the identity encoder's embedding) and plot the "
                                   "space of training data (all data, real attribute-on / -off, the composition's "
                                   "pseudo-samples) and of test data (with each run's test outputs), each group with "
                                   "its covariance ellipse. Writes feature-space.png, feature-space.html (standalone), "
                                   "groups.csv and feature-space.json, and prints the group means and distances.")
    f.add_argument("composition", nargs="?", default=None,
                   help="a composition name or folder (default: the first run's composition)")
    f.add_argument("--runs", nargs="*", default=[], metavar="RUN", help="run ids or folders whose test outputs to place")
    f.add_argument("--encoder", default="attribute", choices=["attribute", "identity"],
                   help="attribute: the attribute classifier's penultimate layer (default); identity: the identity "
                        "encoder's embedding")
    f.add_argument("--sigma", type=float, default=1.0, choices=[1.0, 2.0], help="ellipse radius in sigma (default 1)")
    f.add_argument("--source", default=None, help="a source folder (default: the composition's source, else SynthFaces)")
    f.add_argument("--task", default="eyeglasses", choices=["eyeglasses", "smile"],
                   help="the attribute when no composition says it (default eyeglasses)")
    f.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="which test outputs (default AtoB)")
    f.add_argument("--checkpoint", default="latest", help="latest (default), an iteration number or a file name")
    f.add_argument("--train-encoder", action="store_true", help="train the encoder first if it is not trained yet")
    f.add_argument("--max-points", type=int, default=20000, help="points drawn per group (default 20000; "
                                                                 "ellipses and means use every point)")
    f.add_argument("--out", default=None, help="output folder (default $PAIRLAB_HOME/cache/feature-exports/<time>)")
    f.set_defaults(func=cmd_features)
