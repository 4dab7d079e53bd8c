"""A cconv model scales out with Dask: pickled to two worker processes (scatter once, map over
image batches), it computes on each exactly the bits it computes here. Skips without dask and
distributed."""
import os

import numpy as np
import pytest

from cconv import models

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")


def classify(model, batch):
    return os.getpid(), model(batch)


def test_a_scattered_model_computes_the_same_bits_on_workers():
    model = models.mobilenet_v2(num_classes=10, width_mult=0.5, rng=1)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((2, 3, 48, 48), dtype=np.float32) for _ in range(4)]
    want = [model(b) for b in batches]
    # Processes, not threads: each worker unpickles its own model, as on a real cluster.
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = client.scatter(model, broadcast=True)
        futures = client.map(classify, [remote] * len(batches), batches)
        pids, got = zip(*client.gather(futures))
    assert os.getpid() not in pids
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and np.array_equal(g, w)
