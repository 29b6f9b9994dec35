"""The server from the ecosystem's side: LangChain's ChatOpenAI and OpenAIEmbeddings, Gradio's own
client against the demo mounted at /gradio, our `RemoteEngine` (what generation pages call) and the
RAG page's OpenAI-compatible generator, all against a live local server."""

from __future__ import annotations

import numpy as np
import pytest

from backends.decoding import DecodingConfig
from backends.models.cache import shared_cache
from backends.serving import (
    RemoteEngine,
    RemoteError,
    Unsupported,
    api_params,
    unsupported_reason,
)
from backends.serving.app import ServerSettings
from tests.backends.test_serving import EMB, LM, in_app_greedy, live_server

PROMPT = "Name a primary colour."


@pytest.fixture(scope="module")
def base_url():
    with live_server(ServerSettings(gradio=True, max_tokens=64, api_key="sk-serving-test-KEY")) as url:
        yield url


def test_langchain_chat_and_embeddings(base_url):
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    chat = ChatOpenAI(
        model=LM, base_url=base_url + "/v1", api_key="sk-serving-test-KEY", temperature=0, max_tokens=8, max_retries=0
    )
    expected = in_app_greedy(PROMPT, 8)[0]
    assert chat.invoke(PROMPT).content == expected
    assert "".join(chunk.content for chunk in chat.stream(PROMPT)) == expected
    # Offline there is no tiktoken vocabulary to pre-split texts with, and our model has its own tokenizer.
    embeddings = OpenAIEmbeddings(
        model=EMB,
        base_url=base_url + "/v1",
        api_key="sk-serving-test-KEY",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    vectors = np.array(embeddings.embed_documents(["red", "a red colour", "tax law"]))
    query = np.array(embeddings.embed_query("red"))
    assert vectors.shape == (3, 384) and np.allclose(vectors[0], query, atol=1e-5)
    assert vectors[1] @ query > vectors[2] @ query


def test_gradio_demo_answers_one_chat_turn_through_gradio_client(base_url):
    from gradio_client import Client

    client = Client(base_url + "/gradio/", verbose=False)
    answer = client.predict(PROMPT, LM, 8, 0, api_name="/chat")
    assert answer == in_app_greedy(PROMPT, 8)[0]
    left, right = client.predict(PROMPT, LM, 6, 0, 1, 0, 1, 0, api_name="/compare")
    assert left == right == in_app_greedy(PROMPT, 6)[0]  # both columns greedy: the same answer


def test_remote_engine_streams_greedy_tokens_with_logprobs(base_url):
    engine = RemoteEngine(base_url + "/v1", LM, api_key="sk-serving-test-KEY")
    assert "sk-serving-test-KEY" not in repr(engine) and LM in engine.models()
    text, steps, _ = in_app_greedy(PROMPT, 8)
    got = list(engine.stream_config(PROMPT, DecodingConfig(strategy="greedy", max_new_tokens=8), top_logprobs=3))
    assert "".join(s.text for s in got) == text
    tokens = [t for s in got for t in s.tokens]
    assert [t.token for t in tokens] == [s.text for s in steps]
    assert np.allclose([t.prob for t in tokens], [s.prob for s in steps], atol=1e-5)
    assert [a for a, _ in tokens[0].top] == [a.text for a in steps[0].top]
    assert got[-1].finish_reason in ("stop", "length")
    raw = list(
        engine.stream_config(
            "The sky is", DecodingConfig(strategy="greedy", max_new_tokens=4), chat=False, top_logprobs=2
        )
    )
    assert "".join(s.text for s in raw) == in_app_greedy("The sky is", 4, chat=False)[0]
    # Sampling settings the API expresses; vLLM-style extensions only when asked for.
    sampled = DecodingConfig(strategy="sample", temperature=0.8, top_k=20, max_new_tokens=5, seed=3)
    assert "top_k" in unsupported_reason(sampled)
    params = api_params(sampled, extensions=True)
    assert params["extra_body"] == {"top_k": 20} and params["seed"] == 3
    twice = ["".join(s.text for s in engine.stream_config(PROMPT, sampled, extensions=True)) for _ in range(2)]
    assert twice[0] == twice[1] and twice[0]


def test_remote_engine_refuses_what_the_api_cannot_express_and_reports_errors(base_url):
    for config, words in (
        (DecodingConfig(strategy="beam", num_beams=3), "beam search"),
        (DecodingConfig(strategy="contrastive", top_k=4), "hidden states"),
        (DecodingConfig(strategy="sample", typical_p=0.5), "typical-p"),
    ):
        with pytest.raises(Unsupported, match=words):
            api_params(config)
    with pytest.raises(RemoteError, match="rejected the API key") as caught:
        RemoteEngine(base_url + "/v1", LM, api_key="sk-wrong-KEY-123").chat([{"role": "user", "content": "Hi"}])
    assert caught.value.status == 401 and "sk-wrong-KEY-123" not in str(caught.value)
    with pytest.raises(RemoteError, match="404") as caught:
        RemoteEngine(base_url + "/v1", "missing-model", api_key="sk-serving-test-KEY").chat(
            [{"role": "user", "content": "Hi"}]
        )
    with pytest.raises(RemoteError, match="Could not connect"):
        RemoteEngine("http://127.0.0.1:9/v1", LM, timeout=5).models()
    with pytest.raises(ValueError, match="not an http"):
        RemoteEngine("localhost:8000", LM)


def test_the_rag_pages_generator_uses_the_server_as_its_remote_engine(base_url):
    from backends.rag.generators import LocalGenerator, OpenAICompatibleGenerator

    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": PROMPT}]
    remote = OpenAICompatibleGenerator(base_url + "/v1", LM, api_key="sk-serving-test-KEY")
    served = "".join(remote.stream(messages, max_new_tokens=8, temperature=0))
    local = "".join(LocalGenerator(shared_cache().get(LM)).stream(messages, max_new_tokens=8, temperature=0))
    assert served == local and served.strip()
