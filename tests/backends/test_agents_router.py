"""Tool retrieval (backends/agents/router.py): the scores against cosines computed here from
sentence-transformers' own embeddings of the shipped examples, and the loop offering only the
kept tools (the prompt, the grammar and the allow-list)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends import agents as A
from backends.agents.router import EXAMPLES_FILE
from backends.models.cache import shared_cache

QUESTION = "What date is 12 days after 2024-04-20?"


@pytest.fixture(scope="module")
def minilm():
    return shared_cache().get("all-minilm-l6-v2", variant="sentence").model


def _expected_scores(model, question: str, source: str) -> dict[str, float]:
    examples = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))["examples"]
    q = model.encode([question], normalize_embeddings=True)[0]
    out = {}
    for name, tool in A.TOOLS.items():
        texts = [tool.description] + (examples.get(name, []) if source == "examples" else [])
        v = model.encode(texts, normalize_embeddings=True)
        out[name] = float(np.max(v @ q))
    return out


@pytest.mark.parametrize("source", ["examples", "description"])
def test_scores_are_the_best_cosine_to_each_tools_texts(minilm, source):
    expected = _expected_scores(minilm, QUESTION, source)
    ranked = A.rank_tools(QUESTION, source=source)
    assert [s.name for s in ranked] == sorted(expected, key=lambda n: -expected[n])
    for s in ranked:
        assert s.score == pytest.approx(expected[s.name], abs=1e-5)


def test_routed_tools_keep_the_callers_order_and_reject_unknown_tools():
    tools = ("lookup_fact", "date_diff", "date_add", "calculator")
    scores = {s.name: s.score for s in A.rank_tools(QUESTION, tools)}
    best_two = sorted(tools, key=lambda n: -scores[n])[:2]
    assert A.routed_tools(QUESTION, tools, 2) == tuple(n for n in tools if n in best_two)
    assert A.routed_tools(QUESTION, tools, 0) == tools
    assert A.routed_tools(QUESTION, tools, 9) == tools
    assert A.rank_tools("   ", tools) == []
    with pytest.raises(ValueError, match="Unknown tools"):
        A.rank_tools(QUESTION, ("shell",))
    with pytest.raises(ValueError, match="route_k"):
        A.AgentConfig(route_k=-1).validate()


def test_a_routed_run_offers_only_the_kept_tool(minilm):
    loaded = shared_cache().get("smollm2-135m-instruct")
    config = A.AgentConfig(tool_choice="required", max_steps=1, route_k=1)
    trace = A.run_agent(loaded, QUESTION, config)
    expected = _expected_scores(minilm, QUESTION, "examples")
    best = max(config.tools, key=lambda n: expected[n])
    assert trace.config.tools == (best,)
    assert [s.name for s in trace.routing] == sorted(config.tools, key=lambda n: -expected[n])
    # the prompt lists only that tool's schema
    others = [n for n in config.tools if n != best]
    prompt = loaded.tokenizer.decode(A.prompt_ids(loaded, trace.steps[0].messages, trace.config))
    assert json.dumps(best) in prompt and not any(json.dumps(n) in prompt for n in others)
    assert trace.steps[0].name == best
    assert trace.steps[0].code == "call"  # under the grammar the arguments always fit the kept tool's schema
    assert A.validate_arguments(A.TOOLS[best], trace.steps[0].arguments) is None
