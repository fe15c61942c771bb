"""Source text of small plugins the tests write to disk and load."""

GOOD = '''
from srbench import Method, register
from srbench.protocol import imresize


@register
class Nearest(Method):
    name = "{name}"
    label = "{label}"
    scales = frozenset({{2, 3, 4}})

    def __init__(self):
        pass

    def _upscale(self, lr, scale):
        return lr.repeat(scale, 0).repeat(scale, 1)
'''

BROKEN = '''
import a_module_that_does_not_exist  # noqa: F401
'''

# Fails on chosen images/scales in the ways DESIGN.md section 5 names.
FAULTY = '''
import numpy as np
from srbench import Method, register
from srbench.protocol import imresize


@register
class Faulty(Method):
    name = "faulty"
    label = "Faulty"
    scales = frozenset({2, 3, 4})

    def __init__(self):
        pass

    def upscale(self, lr, scale):  # bypasses the base-class checks on purpose
        out = imresize(np.asarray(lr, dtype=np.float32), scale)
        if scale == 2:
            raise RuntimeError("boom")
        if scale == 3:
            out[0, 0] = np.nan
        if scale == 4:
            out = out[:-1]
        return out
'''

# Sleeps per call so a test can kill a run midway.
SLOW = '''
import time
from srbench import Method, register
from srbench.protocol import imresize


@register
class Slow(Method):
    name = "slow"
    label = "Slow"
    scales = frozenset({2, 3, 4})

    def __init__(self):
        pass

    def _upscale(self, lr, scale):
        time.sleep(0.3)
        return imresize(lr, scale)
'''

# Trainable; records the order in which scales are fitted.
ORDERLY = '''
import os
import numpy as np
from srbench import Method, register
from srbench.protocol import imresize


@register
class Orderly(Method):
    name = "orderly"
    label = "Orderly"
    scales = frozenset({2, 3, 4})
    trainable = True
    base_scale = 3

    def __init__(self, *, gain=1.0):
        self.gain = gain

    def _fit_scale(self, images, scale):
        with open(os.environ["ORDER_LOG"], "a") as log:
            log.write(f"{scale},")
        return {"gain": np.array([self.gain], dtype=np.float32)}, {"images_seen": len(images)}

    def _upscale(self, lr, scale):
        return imresize(lr, scale) * float(self.artifacts_[scale]["gain"][0])
'''

# A plugin that tries to cheat: it searches its own process (every object the garbage
# collector tracks, and the locals of every frame on its stack) for a uint8 array the size
# of the HR image and returns it if it finds one; otherwise it is plain bicubic.
PEEKING = '''
import gc
import inspect
import numpy as np
from srbench import Method, register
from srbench.protocol import imresize


def _hr_candidates(shape):
    for obj in gc.get_objects():
        if isinstance(obj, np.ndarray) and obj.dtype == np.uint8 and obj.shape[:2] == shape:
            yield obj
    for frame in inspect.stack():
        for value in frame.frame.f_locals.values():
            if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.shape[:2] == shape:
                yield value


@register
class Peeking(Method):
    name = "peeking"
    label = "Peeking"
    scales = frozenset({2, 3, 4})

    def __init__(self):
        pass

    def _upscale(self, lr, scale):
        shape = (lr.shape[0] * scale, lr.shape[1] * scale)
        for found in _hr_candidates(shape):
            return found.astype(np.float32) / 255
        return imresize(lr, scale)
'''
