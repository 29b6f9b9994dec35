"""After the imports, the collector's full passes skip the imported objects (backends/core/memory.py)."""

import gc
import weakref

from backends.core.memory import freeze_long_lived
from backends.core.warmup import warm_imports


def tracked_ids() -> set[int]:
    return {id(o) for o in gc.get_objects()}


def test_imported_classes_are_frozen_and_new_objects_still_collected():
    warm_imports()  # freezes once, at the end of the first call in this process
    import torch
    import transformers

    assert gc.get_freeze_count() > 100_000  # the imported libraries: hundreds of thousands of objects
    ids = tracked_ids()
    assert id(transformers.AutoConfig) not in ids and id(torch.nn.Module) not in ids

    # Something made afterwards is tracked, and a cycle of such objects is still collected.
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    assert id(a) in tracked_ids()
    ref = weakref.ref(a)
    del a, b
    gc.collect()
    assert ref() is None


def test_freezing_again_counts_what_was_made_since():
    before = freeze_long_lived()
    made = [[i] for i in range(1000)]  # lists are tracked by the collector
    after = freeze_long_lived()
    assert after >= before + len(made)
