"""The Agents page on the real offline SmolLM2-135M-Instruct: the trace of a run, a branch from an
edited step, memory token counts, the injection tab.

Expected values come from the model's own tokenizer and chat template, the shipped files and the
tools' own functions."""

from __future__ import annotations

import json

import pytest

from backends import agents as A
from backends.agents.memory import messages_for
from backends.models.cache import shared_cache
from components.i18n import strings
from components.page_registry import PAGES

AGENTS = next(p for p in PAGES if p.key == "agents")
EN, ZH = strings("en"), strings("zh")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = "text=" + EN["agents.run.none"]


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    assert at.info[0].value == EN["agents.run.none"]
    boxes = {c.key: c.value for c in at.checkbox if c.key and c.key.startswith("agents.tool.")}
    assert set(boxes) == {"agents.tool." + n for n in A.TOOL_NAMES}
    assert boxes["agents.tool.calculator"] and not boxes["agents.tool.send_message"]
    code = next(c.value for c in at.code if "create_react_agent" in c.value)
    assert 'base_url="http://localhost:8000/v1"' in code and '"name": "calculator"' in code


@pytest.fixture
def page(open_page):
    return open_page(AGENTS)


def open_tab(at, label):
    at.session_state["agents.tab"] = label
    return at.run()


def test_a_required_run_shows_its_call_and_result_then_a_branch_names_an_unknown_tool(page):
    at = page
    for name in A.TOOL_NAMES:
        at.checkbox(key="agents.tool." + name).set_value(name == "calculator")
    at.text_input(key="agents.question").set_value("What is 17 times 23?")
    at.radio(key="agents.choice").set_value("required")
    at.slider(key="agents.max_steps").set_value(1)
    at.button(key="agents.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    trace = at.session_state["agents.trace"]
    step = trace.steps[0]
    assert step.name == "calculator" and A.validate_arguments(A.TOOLS["calculator"], step.arguments) is None
    assert trace.stopped == "step_limit" and len(trace.steps) == 1
    expected = A.run_tool("calculator", step.arguments, A.Context()).result
    assert step.result == expected
    labels = [e.label for e in at.expander]
    assert any(label.startswith("Step 1: calculator(") for label in labels)
    assert any(c.value == expected for c in at.code)
    # Branch: the same step with a tool that does not exist.
    at.text_area(key="agents.edit.call.0").set_value(json.dumps({"name": "rm_rf", "arguments": {}}))
    at.button(key="agents.edit.go").click().run()
    branch = at.session_state["agents.trace"]
    assert branch.branched_from == 0 and branch.steps[0].edited and branch.stopped == "unknown_tool"
    assert EN["agents.trace.branched"].format(n=1) in [c.value for c in at.caption]
    headline = EN["agents.err.tool.unknown"].format(name="rm_rf", tools="calculator")
    assert EN["agents.trace.error"].format(error=headline) in [e.value for e in at.error]


def test_memory_tab_counts_tokens_with_the_models_template(page):
    at = open_tab(page, EN["agents.tab.memory"])
    assert not at.exception, [e.value for e in at.exception]
    tok = shared_cache().get("smollm2-135m-instruct").tokenizer
    turns = A.shipped_dialogue()["turns"]
    table = at.dataframe[0].value
    for strategy, column in (("full", "Full history"), ("window", "Last-k window")):
        for i, turn in enumerate(turns):
            msgs = messages_for(strategy, turns[:i], turn["user"], 2)
            n = len(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)["input_ids"])
            assert table[column].iloc[i] == n
    assert list(table["Full history"]) == sorted(table["Full history"])  # the full buffer only grows
    shown = [m.value for m in at.markdown]
    assert any(v.startswith("✅ **Full history**") for v in shown)
    assert any(v.startswith("❌ **Last-k window**") for v in shown)
    assert any(v.startswith("✅ **Summary + last exchange**") for v in shown)


def test_injection_tab_shows_the_poisoned_document(page):
    at = open_tab(page, EN["agents.tab.injection"])
    assert not at.exception, [e.value for e in at.exception]
    first = A.shipped_injections()["items"][0]
    assert any(c.value == first["document"] for c in at.code)
    target = EN["agents.inj.target"].format(tool=first["target_tool"], payload=first["payload"])
    assert target in [c.value for c in at.caption]
    styles = {i["style"] for i in A.shipped_injections()["items"]}
    assert styles == {"instruction", "format", "role"} and len(A.shipped_injections()["items"]) == 24


def test_the_page_speaks_chinese(open_page):
    at = open_page(AGENTS, **{"app.lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == ZH["page.agents.title"]
    assert at.info[0].value == ZH["agents.run.none"]
    assert at.radio(key="agents.choice").options == [ZH["agents.choice.required"], ZH["agents.choice.auto"]]


def send_trace(max_steps: int = 1):
    """A run paused at send_message: an edited first step (no model call is needed to get there)."""
    config = A.AgentConfig(
        tools=("calculator", "send_message"), max_steps=max_steps, confirm_side_effects=True, pause_for_approval=True
    )
    seed = A.Trace("Tell Mei I will be late.", config, [A.Step(0, [], "", name="calculator")])
    return A.replay(None, seed, 0, "send_message", {"to": "mei@example.com", "text": "Late by 10 min."})


@pytest.mark.parametrize("approved", [True, False])
def test_a_paused_call_waits_for_the_buttons(open_page, approved):
    at = open_page(AGENTS, **{"agents.trace": send_trace()})
    assert not at.exception, [e.value for e in at.exception]
    shown = [m.value for m in at.markdown]
    assert EN["agents.approve.ask"].format(tool="send_message") in shown
    assert any(
        json.loads(c.value) == {"to": "mei@example.com", "text": "Late by 10 min."}
        for c in at.code
        if c.language == "json"
    )
    at.button(key="agents.approve.yes" if approved else "agents.approve.no").click().run()
    assert not at.exception, [e.value for e in at.exception]
    trace = at.session_state["agents.trace"]
    assert trace.stopped == "step_limit" and not [b for b in at.button if b.key == "agents.approve.yes"]
    if approved:
        assert trace.steps[0].code == "call" and trace.outbox == [{"to": "mei@example.com", "text": "Late by 10 min."}]
        assert trace.steps[0].result == "Message to mei@example.com queued (simulated: nothing leaves the app)."
    else:
        assert trace.steps[0].code == "declined" and trace.outbox == []
        assert trace.steps[0].result == "The user declined this call; it was not run."


def test_a_step_error_is_worded_in_chinese_with_the_library_text_as_code(open_page):
    config = A.AgentConfig(tools=("calculator",), max_steps=1)
    seed = A.Trace("q", config, [A.Step(0, [], "", name="calculator")])
    trace = A.replay(None, seed, 0, "calculator", {"expression": 12})  # jsonschema refuses: not a string
    at = open_page(AGENTS, **{"app.lang": "zh", "agents.trace": trace})
    assert not at.exception, [e.value for e in at.exception]
    headline = ZH["agents.err.tool.schema_at"].format(tool="calculator", where="expression")
    assert ZH["agents.trace.error"].format(error=headline + " `12 is not of type 'string'`") in [
        e.value for e in at.error
    ]


def test_an_unreachable_remote_engine_is_a_message(open_page):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    at = open_page(AGENTS, **{"engine.remote": True, "engine.base_url": f"http://127.0.0.1:{port}/v1"})
    assert not at.exception, [e.value for e in at.exception]
    assert EN["agents.remote_note"].format(server=f"http://127.0.0.1:{port}/v1") in [c.value for c in at.caption]
    at.button(key="agents.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.value.startswith(EN["agents.remote_failed"] + " `Could not connect to") for e in at.error)
    assert "agents.trace" not in at.session_state


def test_tool_retrieval_offers_the_best_scoring_tool_and_shows_the_scores(page):
    at = page
    for name in A.TOOL_NAMES:
        at.checkbox(key="agents.tool." + name).set_value(name in ("calculator", "lookup_fact"))
    at.text_input(key="agents.question").set_value("What is the capital of Japan?")
    at.radio(key="agents.choice").set_value("required")
    at.radio(key="agents.route").set_value(1)
    at.slider(key="agents.max_steps").set_value(1)
    at.button(key="agents.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    trace = at.session_state["agents.trace"]
    table = next(df.value for df in at.dataframe if EN["agents.routing.kept"] in df.value.columns)
    assert sorted(table[EN["agents.routing.tool"]]) == ["calculator", "lookup_fact"]
    kept = table[table[EN["agents.routing.kept"]] == "✓"][EN["agents.routing.tool"]].tolist()
    assert len(kept) == 1 and trace.config.tools == tuple(kept)
    scores = table[EN["agents.routing.score"]].tolist()
    assert scores == sorted(scores, reverse=True) and kept[0] == table[EN["agents.routing.tool"]].iloc[0]
    assert trace.steps[0].name == kept[0]  # the grammar allowed no other call
