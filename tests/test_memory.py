import mmap

import numpy as np
import pytest

from srbench import memory


@pytest.mark.parametrize("shape", [7, (3, 5), (1 << 12, 1 << 11)])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int64])
def test_empty_is_a_writable_c_contiguous_array_of_the_shape_and_dtype(shape, dtype):
    array = memory.empty(shape, dtype)
    assert array.shape == ((shape,) if isinstance(shape, int) else shape)
    assert array.dtype == np.dtype(dtype)
    assert array.flags.c_contiguous and array.flags.writeable and array.flags.aligned
    array[...] = 3
    assert (array == 3).all()


def test_large_arrays_are_mapped_populated_and_outlive_the_function(monkeypatch):
    if not hasattr(mmap, "MAP_POPULATE"):
        pytest.skip("no MAP_POPULATE here")
    monkeypatch.setattr(memory, "POPULATE_FROM", 1 << 16)
    array = memory.empty((300, 100), np.float64)  # 240 kB
    owner = array
    while isinstance(owner, np.ndarray):
        owner = owner.base
    assert isinstance(owner, memoryview) and isinstance(owner.obj, mmap.mmap)
    view = array[10:20]
    del array
    view[...] = np.arange(100)
    assert view.sum() == 10 * 4950
    small = memory.empty((10, 10), np.float64)  # below the threshold: numpy's own
    assert small.base is None
