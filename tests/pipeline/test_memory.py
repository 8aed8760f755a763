"""Peak memory per component: each component's own high-water mark."""

import numpy as np

from pipeline.memory import PeakMemory


def test_each_component_gets_its_own_peak():
    with PeakMemory() as memory:
        memory.start("big")
        block = np.ones(300 * 2**20 // 8)  # 300 MB, touched
        del block
        memory.start("small")
        np.ones(1000).sum()
    assert memory.peaks["big"] > memory.peaks["small"] + 250
    assert memory.peaks["small"] > 0
