from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Epilogue", "ACTIVATIONS", "kernel_args", "check_residual"]

ACTIVATIONS: Final[tuple[str, ...]]

class Epilogue:
    scale: NDArray[np.float64] | None
    shift: NDArray[np.float64] | None
    activation: str | None
    min: float | None
    max: float | None
    negative_slope: float | None
    def __init__(
        self,
        scale: ArrayLike | None = None,
        shift: ArrayLike | None = None,
        activation: str | None = None,
        *,
        min: float | None = None,
        max: float | None = None,
        negative_slope: float | None = None,
    ) -> None: ...
    def check(self, fn: str, C_out: int) -> None: ...
    @property
    def identity(self) -> bool: ...

def check_residual(
    fn: str, residual: object, shape: tuple[int, ...], dtype: object, out: object = None
) -> NDArray[np.float32] | NDArray[np.float64] | None: ...
def kernel_args(epilogue: Epilogue | None, residual: object, dtype: object) -> tuple | None: ...
