"""Serving a service: the collector tuned before the server starts."""

import gc

from cohort_shared.serving import GC_THRESHOLDS, tune_gc


def test_tuning_the_collector_freezes_start_up_and_collects_less_often():
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
