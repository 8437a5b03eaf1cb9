"""Shared type aliases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

Array1d: TypeAlias = npt.NDArray[np.float64]
Array2d: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Params: TypeAlias = Mapping[str, float]
