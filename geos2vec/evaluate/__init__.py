"""Downstream evaluation: can an embedding tell more than its trivial baselines.

One module per job:

* :mod:`~geos2vec.evaluate.labels` - point labels to level-12 cells (median), polygons to weighted cells;
* :mod:`~geos2vec.evaluate.tasks` - named tasks (``ca-housing``, ``ca-tracts:<col>``, ``zcta:<col>``,
  ``nyc-tracts:<col>``, ``chicago-tracts:<col>``) and their feature sources;
* :mod:`~geos2vec.evaluate.splits` - ``random``, ``blocked`` and ``region`` splits;
* :mod:`~geos2vec.evaluate.baselines` - counts, smoothed counts, region one-hot, PCA, random projection,
  the untrained-encoder control;
* :mod:`~geos2vec.evaluate.probes` - ridge; :mod:`~geos2vec.evaluate.mlp_training` - the paper's MLP (batched
  heads);
* :mod:`~geos2vec.evaluate.protocol` - :func:`evaluate`: every method on the same samples and splits;
  :mod:`~geos2vec.evaluate.inputs` - a :class:`Method`'s tables pooled to samples and prepared per split;
  :mod:`~geos2vec.evaluate.result` - the :class:`EvaluationResult` it returns;
* :mod:`~geos2vec.evaluate.methods` - the standard method set, model embeddings;
* :mod:`~geos2vec.evaluate.suite` - tasks x splits in one run; :mod:`~geos2vec.evaluate.summary` - the summary
  table; :mod:`~geos2vec.evaluate.paired` - paired win counts, the sign test, verdicts;
  :mod:`~geos2vec.evaluate.report` - the report's files, Markdown and figures;
* :mod:`~geos2vec.evaluate.seams` - how much of an embedding's variance level-8 image borders explain;
* :mod:`~geos2vec.evaluate.significance` - the corrected resampled t-test of paired splits.

Every name in a submodule's ``__all__`` is importable from here, except :mod:`~geos2vec.evaluate.mlp_layers`'
Keras layer (imported when an MLP probe runs).

The command line is ``geos2vec evaluate`` (:mod:`geos2vec.cli_evaluate`).
"""

from .baselines import (  # noqa: F401 - _check_table is for the evaluate tests
    _check_table,
    count_table_from_points,
    covered_mask,
    log1p_counts,
    normalized_counts,
    pca_embedding,
    random_projection,
    region_onehot,
    smoothed_counts,
    untrained_model,
)
from .labels import LEVEL, join_labels, minmax_scale, polygon_pooling
from .methods import model_embeddings, standard_methods
from .inputs import Method
from .mlp_training import (  # noqa: F401 - the private names are for the evaluate tests and benchmarks
    _GroupTrainer,
    _parallel_mlp_class,
    _train_group,
    build_mlp,
)
from .paired import BEATS_P, BEATS_SHARE, paired_table, sign_test_p, verdict
from .probes import RIDGE_ALPHAS, ridge_onehot_probe, ridge_probe, standardize
from .protocol import DEFAULT_SWEEP, PROBES, SPLITS, TARGET_SCALES, evaluate
from .report import summary_markdown, write_report
from .result import EvaluationResult
from .seams import block_share, border_step, seam_pvalue, seam_table
from .significance import corrected_resampled_ttest, holm_adjust, student_t_sf
from .splits import (
    blocked_splits,
    check_test_sets,
    holdout_mask,
    holdout_splits,
    purge_shared_cells,
    random_splits,
    region_splits,
    split_ids,
)
from .suite import DEFAULT_TASKS, run_suite
from .summary import summary_table
from .tasks import TASKS, Task, data_dir, list_tasks, load_features, load_task

__all__ = [
    "LEVEL", "DEFAULT_SWEEP", "PROBES", "SPLITS", "TARGET_SCALES", "RIDGE_ALPHAS", "DEFAULT_TASKS", "TASKS",
    "join_labels", "minmax_scale", "polygon_pooling",
    "Task", "list_tasks", "load_task", "load_features", "data_dir", "BEATS_SHARE", "BEATS_P", "sign_test_p",
    "student_t_sf",
    "random_splits", "blocked_splits", "region_splits", "holdout_mask", "holdout_splits", "purge_shared_cells",
    "split_ids", "check_test_sets",
    "count_table_from_points", "covered_mask", "log1p_counts", "normalized_counts", "smoothed_counts",
    "region_onehot", "pca_embedding", "random_projection", "untrained_model",
    "build_mlp", "ridge_probe", "ridge_onehot_probe", "standardize",
    "Method", "EvaluationResult", "evaluate", "standard_methods", "model_embeddings", "run_suite",
    "summary_table", "paired_table", "verdict", "corrected_resampled_ttest", "holm_adjust", "summary_markdown",
    "write_report",
    "block_share", "border_step", "seam_pvalue", "seam_table",
]
