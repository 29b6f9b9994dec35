"""The Compression page in AppTest, on real runs: the structured-pruning plan for SmolLM2 against a hand
computation from its config, and a short comparable table on the GPT trained here whose structured row
really holds fewer weights (by the count its config implies) and whose pruned rows moved the predictions."""

import time

import pytest

from backends import quantization as q
from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

PAGE = next(p for p in PAGES if p.key == "compression")
EN = strings("en")
P = "compression.table."

BROWSER_MUST_SHOW = "text=" + EN[P + "plan.prunable"]

# SmolLM2-135M: 30 blocks, hidden 576, 9 query heads of 64 sharing 3 KV heads, MLP 1536 wide.
LAYERS, D, HEADS, KV, HEAD_DIM, FF = 30, 576, 9, 3, 64, 1536


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    metrics = {m.label: m.value for m in at.metric}
    per_block = 2 * D * HEADS * HEAD_DIM + 2 * D * KV * HEAD_DIM + 3 * D * FF  # q, o; k, v; gate, up, down
    assert metrics[EN[P + "plan.prunable"]] == f"{LAYERS * per_block:,}"
    # 30%: one query head of every 3-head group (3 of 9), then MLP channels for the rest of the share.
    assert metrics[EN[P + "plan.heads"]] == f"3 / {HEADS}"
    channels = int(metrics[EN[P + "plan.channels"]].split(" / ")[0])
    removed = LAYERS * (3 * 2 * D * HEAD_DIM + channels * 3 * D)
    assert abs(removed / (LAYERS * per_block) - 0.3) < 0.01
    total = int(metrics[EN[P + "plan.params"]].replace(",", ""))
    # The removed units' mean output is folded into biases SmolLM2 did not have (q 6 heads, k and v 2 x 3
    # heads, o, gate and up over the kept channels, down): the pruned copy holds these too.
    bias = LAYERS * (6 * HEAD_DIM + 2 * KV * HEAD_DIM + D + 2 * (FF - channels) + D)
    caption = " ".join(c.value for c in at.caption)
    assert f"{total - removed + bias:,}" in caption


@pytest.fixture
def page(open_page):
    return open_page(PAGE)


def test_a_short_table_on_real_weights_shows_each_method_on_the_harness(page):
    at = page
    at.button(key=P + "use_real").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="compression.model").value == str(q.train_demo_gpt())
    keys = ["fp32", "prune-magnitude-50", "prune-structured-30", "rtn-w4g64"]
    at.multiselect(key=P + "variants").set_value(keys).run()
    at.select_slider(key=P + "ppl_tokens").set_value(1024).run()
    at.number_input(key=P + "runs").set_value(1).run()
    at.button(key=P + "start").click().run()
    job = shared_runner().get(at.session_state[P + "job"])
    deadline = time.time() + 600
    while not job.done and time.time() < deadline:
        time.sleep(2)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert job.status == "done", job.error
    at.run()
    table = next(d.value for d in at.dataframe if EN["quantization.col.kld"] in d.value.columns)
    rows = table.set_index(EN["quantization.col.variant"])
    label = {k: EN[f"quantization.variant.{k}"] for k in keys[1:]}
    status = {k: rows.loc[v, EN["quantization.col.status"]] for k, v in label.items()}
    assert set(status.values()) == {EN["quantization.status.ok"]}, status
    kld = {k: rows.loc[v, EN["quantization.col.kld"]] for k, v in label.items()}
    assert all(v > 0 for v in kld.values()), kld
    # The GPT (GPT-NeoX, 2 blocks, n_embd 256, MLP 1024) loses only MLP channels: each takes 2 x 256
    # weights and one bias; the structured row's file is smaller by those fp32 bytes (give or take the header).
    metrics = {m.label: m.value for m in at.metric}
    channels = int(metrics[EN[P + "plan.channels"]].split(" / ")[0])
    saved_mb = 2 * channels * (2 * 256 + 1) * 4 / 1e6
    fp32_mb = rows.iloc[0][EN["quantization.col.disk"]]  # the baseline runs first
    pruned_mb = rows.loc[label["prune-structured-30"], EN["quantization.col.disk"]]
    assert abs((fp32_mb - pruned_mb) - saved_mb) < 0.05, (fp32_mb, pruned_mb, saved_mb)
    # Unstructured pruning keeps every weight (zeros are stored): the same file size as fp32.
    assert abs(rows.loc[label["prune-magnitude-50"], EN["quantization.col.disk"]] - fp32_mb) < 0.05
