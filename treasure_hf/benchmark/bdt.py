"""The BDT row: scikit-learn's histogram gradient boosting on the engineered observables
(:data:`~treasure_hf.benchmark.observables.FEATURES`), early-stopped on the validation events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BDTArguments:
    """Hyperparameters of :class:`sklearn.ensemble.HistGradientBoostingClassifier`."""

    learning_rate: float = 0.05
    max_iter: int = 500
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 20
    l2_regularization: float = 1.0
    n_iter_no_change: int = 20


def train_bdt(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int,
    args: BDTArguments | None = None,
):
    """Fit on (n, n_features) ``x_train`` with labels 1 = signal; stop when the validation loss
    has not improved for ``n_iter_no_change`` iterations. Returns the fitted classifier."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    args = args or BDTArguments()
    clf = HistGradientBoostingClassifier(
        learning_rate=args.learning_rate,
        max_iter=args.max_iter,
        max_leaf_nodes=args.max_leaf_nodes,
        min_samples_leaf=args.min_samples_leaf,
        l2_regularization=args.l2_regularization,
        early_stopping=True,
        n_iter_no_change=args.n_iter_no_change,
        random_state=seed,
    )
    clf.fit(x_train, y_train, X_val=x_val, y_val=y_val)
    return clf


def bdt_scores(clf, x: np.ndarray) -> np.ndarray:
    """Signal probability (n,) of each event."""
    return clf.predict_proba(x)[:, 1]
