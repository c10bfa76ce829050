"""Angles of collider kinematics, written once: azimuth wrapping and the azimuthal difference."""

from __future__ import annotations

import numpy as np


def wrap_angle(x: np.ndarray) -> np.ndarray:
    """Angles (rad) wrapped into [-pi, pi)."""
    return (np.asarray(x, np.float64) + np.pi) % (2 * np.pi) - np.pi


def delta_phi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b (rad) wrapped into [-pi, pi), in the inputs' type (numpy or awkward arrays)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi
