"""The decoding page on the offline SmolLM2: columns, reproducibility, inspection, export."""

import json

import pytest

from backends import decoding as dec
from backends.models.cache import shared_cache
from components.page_registry import PAGES

from .plotly_helpers import figures

DECODING = next(p for p in PAGES if p.key == "decoding")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = 'button:has-text("Generate")'


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    names = [m.value for m in at.markdown if m.value.startswith("**")]
    assert names[:4] == ["**greedy**", "**beam 5**", "**sampling t=0.7 top-k 50**", "**nucleus top-p 0.9**"]
    assert at.button(key="dec.run").label == "Generate"


@pytest.fixture
def page(open_page):
    at = open_page(DECODING)
    at.number_input(key="dec.max_new").set_value(12).run()
    return at


def outputs(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith('<div style="line-height:1.9"><span title="#0')]


def keep_columns(at, wanted: set[str]):
    for column in list(at.session_state["dec.columns"]):
        if column["name"] not in wanted:
            at.button(key=f"dec.rm.{column['id']}").click().run()


def test_four_presets_run_and_sampling_is_reproducible_by_seed(page):
    keep_columns(page, {"greedy", "sampling t=0.7 top-k 50", "nucleus top-p 0.9"})
    page.button(key="dec.run").click().run()
    assert not page.exception
    first = outputs(page)
    assert len(first) == 3 and len(set(first)) >= 2, "different configs give different outputs"
    assert sum("tokens/s" in c.value and "perplexity" in c.value for c in page.caption) == 3
    page.button(key="dec.run").click().run()
    assert outputs(page) == first, "same seed, same tokens"
    page.number_input(key="dec.seed").set_value(7).run()
    page.button(key="dec.run").click().run()
    assert outputs(page)[0] == first[0], "greedy does not depend on the seed"
    assert outputs(page)[1:] != first[1:]


def test_greedy_column_equals_model_generate(page):
    keep_columns(page, {"greedy"})
    page.button(key="dec.run").click().run()
    result = next(iter(page.session_state["dec.results"].values()))
    loaded = shared_cache().get("smollm2-135m-instruct")
    prompt_ids = dec.encode_prompt(loaded, page.text_area(key="dec.prompt").value, chat=True)
    import torch

    with torch.inference_mode():
        out = loaded.model.generate(torch.tensor([prompt_ids]), max_new_tokens=12, do_sample=False)
    assert result["ids"] == out[0, len(prompt_ids) :].tolist()


def test_beam_column_draws_its_tree(page):
    keep_columns(page, {"beam 5"})
    page.button(key="dec.run").click().run()
    tree = figures(page)[0]
    assert {trace.name for trace in tree.data} >= {"kept beam", "best hypothesis", "dropped"}
    best = next(trace for trace in tree.data if trace.name == "best hypothesis")
    labelled = [trace for trace in tree.data if trace.text is not None and len(trace.text)]
    assert labelled == [best], "only the best path carries labels, so they cannot pile up"
    beam = next(iter(page.session_state["dec.results"].values()))["beam"]
    assert len(beam.best_ids) - 1 <= len(best.text) <= len(beam.best_ids), "one label per token of the best"


def test_inspect_shows_the_distribution_and_branches(page):
    keep_columns(page, {"greedy"})
    page.button(key="dec.run").click().run()
    page.session_state["dec.tab"] = "Inspect & branch"
    page.run()
    dist = figures(page)[0]
    assert [trace.name for trace in dist.data] == ["raw softmax", "after filters"]
    original = page.session_state["dec.results"]
    column_id = next(iter(original))
    alternatives = page.selectbox(key=f"dec.branch_alt.{column_id}.0").options
    page.select_slider(key="dec.inspect_step").set_value(2).run()
    # By default the branch takes the most likely token the run did not take (greedy took the first).
    assert page.selectbox(key=f"dec.branch_alt.{column_id}.2").index == 1
    page.button(key="dec.branch").click().run()
    _, step, steps = page.session_state["dec.branch_result"]
    greedy_ids = original[column_id]["ids"]
    assert step == 2 and steps[0].index == 2 and steps[0].token_id != greedy_ids[2]
    assert len(alternatives) == 15
    branched_html = [m.value for m in page.markdown if m.value.startswith('<div style="line-height:1.9">')]
    assert len(branched_html) == 1, "the branched text is shown once"


def test_empty_prompt_is_a_message_not_a_crash(page):
    page.text_area(key="dec.prompt").set_value("  ").run()
    page.button(key="dec.run").click().run()
    assert not page.exception
    assert any("prompt is empty" in w.value for w in page.warning)


def test_exported_run_is_valid_json_that_loads_back(page):
    keep_columns(page, {"greedy", "nucleus top-p 0.9"})
    page.button(key="dec.run").click().run()
    results = page.session_state["dec.results"]
    columns = page.session_state["dec.columns"]
    record = dec.run_record(
        "p",
        True,
        [results[c["id"]]["config"] for c in columns],
        42,
        [dec.RunOutput(results[c["id"]]["ids"], results[c["id"]]["text"]) for c in columns],
    )
    back = dec.load_run(json.loads(json.dumps(record)))
    assert [c.strategy for c in back.configs] == ["greedy", "sample"]
    page.session_state["dec.tab"] = "Export / import"
    page.run()
    assert not page.exception
    assert any(b.label.startswith("Download this run") for b in page.get("download_button"))


def test_a_shared_link_reopens_the_same_view_and_follows_changes(open_page):
    cols = '[{"name":"hot","strategy":"sample","temperature":1.3},{"name":"plain"}]'
    at = open_page(
        DECODING, query={"prompt": "Name three rivers.", "max_new": "7", "seed": "3", "chat": "0", "cols": cols}
    )
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_area(key="dec.prompt").value == "Name three rivers."
    assert at.number_input(key="dec.max_new").value == 7 and at.number_input(key="dec.seed").value == 3
    assert at.toggle(key="dec.chat").value is False
    assert [c["name"] for c in at.session_state["dec.columns"]] == ["hot", "plain"]
    assert at.session_state["dec.columns"][0]["config"].temperature == 1.3
    at.number_input(key="dec.max_new").set_value(9).run()
    assert at.query_params["max_new"] == "9"
    assert "temperature" in str(at.query_params["cols"])


def test_a_bad_link_falls_back_to_the_defaults(open_page):
    at = open_page(DECODING, query={"max_new": "100000", "cols": "{not json", "seed": "minus one"})
    assert not at.exception
    assert at.number_input(key="dec.max_new").value == 40 and at.number_input(key="dec.seed").value == 42
    assert [c["name"] for c in at.session_state["dec.columns"]][:2] == ["greedy", "beam 5"]


@pytest.fixture(scope="module")
def served():
    """This app's own OpenAI-compatible server (make serve), live on a free local port."""
    from backends.serving.app import ServerSettings
    from backends.serving.local import ServerThread

    with ServerThread(ServerSettings(gradio=False, max_tokens=64)) as url:
        yield url


def test_a_remote_engine_runs_the_columns_and_explains_what_it_cannot(page, served):
    """The sidebar's engine sends the columns to a server (here our own `make serve`): greedy comes
    back with the same text as the in-app greedy column and the server's probabilities on each chip;
    beam search, which the API cannot express, is not run and says why."""
    keep_columns(page, {"greedy", "beam 5"})
    page.button(key="dec.run").click().run()
    local = next(r for r in page.session_state["dec.results"].values() if r["beam"] is None)
    page.toggle(key="engine.remote").set_value(True).run()
    page.text_input(key="engine.base_url").input(served + "/v1").run()
    page.text_input(key="dec.remote_model").input("smollm2-135m-instruct").run()
    assert any("Not run on the server: beam search" in c.value for c in page.caption)
    page.button(key="dec.run").click().run()
    assert not page.exception and not page.error
    remote = [r for r in page.session_state["dec.results"].values() if r.get("remote")]
    assert len(remote) == 1
    assert remote[0]["text"].strip() == local["text"].strip()
    steps = remote[0]["steps"]
    assert [s.text for s in steps][:5] == [s.text for s in local["steps"]][:5]
    assert all(0 < s.prob <= 1 and s.top for s in steps)
    assert abs(steps[0].prob - local["steps"][0].prob) < 1e-3
    assert any("Generated by smollm2-135m-instruct on the server" in c.value for c in page.caption)
    page.text_input(key="engine.base_url").input("http://127.0.0.1:9/v1").run()
    page.button(key="dec.run").click().run()
    assert any("Could not connect" in e.value for e in page.error) and not page.exception
