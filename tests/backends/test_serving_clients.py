"""The server from the ecosystem's side: LangChain's ChatOpenAI and OpenAIEmbeddings, Gradio's own
client against the demo mounted at /gradio, our `RemoteEngine` (what generation pages call) and the
RAG page's OpenAI-compatible generator, all against a live local server; and the wire details a
client reads: each token's true bytes in logprobs (emoji and Chinese split inside a character),
and `"usage": null` on every streamed chunk but the last."""

from __future__ import annotations

import json

import httpx
import numpy as np
import openai
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
KEY = "sk-serving-test-KEY"
EMOJI = "Reply with one emoji: 😀"  # SmolLM2 answers greedily with emoji, three tokens each
CHINESE = "中文: 你好。中文: 谢谢。中文:"  # ... and continues this raw prompt in Chinese


def whole(raw) -> bool:
    """Whether a token's bytes are whole UTF-8 on their own."""
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def legacy_bytes(token: str) -> bytes:
    """A legacy completions token's bytes: OpenAI writes one that is not whole UTF-8 as `bytes:\\xNN...`."""
    return bytes.fromhex(token[6:].replace("\\x", "")) if token.startswith("bytes:") else token.encode("utf-8")


@pytest.fixture(scope="module")
def base_url():
    with live_server(ServerSettings(gradio=True, max_tokens=64, api_key=KEY)) as url:
        yield url


def test_langchain_chat_and_embeddings(base_url):
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    chat = ChatOpenAI(model=LM, base_url=base_url + "/v1", api_key=KEY, temperature=0, max_tokens=8, max_retries=0)
    expected = in_app_greedy(PROMPT, 8)[0]
    assert chat.invoke(PROMPT).content == expected
    assert "".join(chunk.content for chunk in chat.stream(PROMPT)) == expected
    # Offline there is no tiktoken vocabulary to pre-split texts with, and our model has its own tokenizer.
    embeddings = OpenAIEmbeddings(
        model=EMB,
        base_url=base_url + "/v1",
        api_key=KEY,
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
    engine = RemoteEngine(base_url + "/v1", LM, api_key=KEY)
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
        RemoteEngine(base_url + "/v1", "missing-model", api_key=KEY).chat([{"role": "user", "content": "Hi"}])
    with pytest.raises(RemoteError, match="Could not connect"):
        RemoteEngine("http://127.0.0.1:9/v1", LM, timeout=5).models()
    with pytest.raises(ValueError, match="not an http"):
        RemoteEngine("localhost:8000", LM)


def test_the_rag_pages_generator_uses_the_server_as_its_remote_engine(base_url):
    from backends.rag.generators import LocalGenerator, OpenAICompatibleGenerator

    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": PROMPT}]
    remote = OpenAICompatibleGenerator(base_url + "/v1", LM, api_key=KEY)
    served = "".join(remote.stream(messages, max_new_tokens=8, temperature=0))
    local = "".join(LocalGenerator(shared_cache().get(LM)).stream(messages, max_new_tokens=8, temperature=0))
    assert served == local and served.strip()


def test_chat_logprobs_carry_each_tokens_true_bytes_streamed_or_not(base_url):
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0, timeout=120)
    ask = {"model": LM, "messages": [{"role": "user", "content": EMOJI}], "max_tokens": 9, "temperature": 0}
    reply = client.chat.completions.create(**ask, logprobs=True, top_logprobs=3)
    text, tokens = reply.choices[0].message.content, reply.choices[0].logprobs.content
    assert any(ord(c) > 0xFFFF for c in text)  # an emoji (outside the BMP: four UTF-8 bytes)
    assert b"".join(bytes(t.bytes) for t in tokens) == text.encode("utf-8")
    split = [t for t in tokens if not whole(t.bytes)]
    assert split and all(b"\xef\xbf\xbd" not in bytes(t.bytes) for t in tokens)  # no U+FFFD stands in
    # OpenAI's logprobs cookbook shows a token that is part of an emoji as its bytes escaped: "\xf0\x9f\x92".
    assert split[0].token == "".join(f"\\x{b:02x}" for b in split[0].bytes)
    for t in tokens:  # greedy: the likeliest alternative is the token itself, bytes included
        assert (t.top_logprobs[0].token, t.top_logprobs[0].bytes) == (t.token, t.bytes)
        assert len({bytes(a.bytes) for a in t.top_logprobs}) == 3  # distinct tokens, distinct bytes
    chunks = list(client.chat.completions.create(**ask, logprobs=True, top_logprobs=3, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    sent = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert streamed == text and b"".join(bytes(t.bytes) for t in sent) == text.encode("utf-8")
    # RemoteEngine labels tokens as the in-app loop does (a split character shows U+FFFD) and keeps the bytes.
    engine = RemoteEngine(base_url + "/v1", LM, api_key=KEY)
    remote = [t for s in engine.stream_chat(ask["messages"], max_tokens=9, top_logprobs=3) for t in s.tokens]
    assert [t.token for t in remote] == [s.text for s in in_app_greedy(EMOJI, 9)[1]]
    assert b"".join(t.raw for t in remote) == text.encode("utf-8")


def test_completions_logprobs_rebuild_chinese_bytes_streamed_or_not(base_url):
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0, timeout=120)
    ask = {"model": LM, "prompt": CHINESE, "max_tokens": 6, "temperature": 0, "logprobs": 2}
    reply = client.completions.create(**ask)
    text, logprobs = reply.choices[0].text, reply.choices[0].logprobs
    assert any("\u4e00" <= c <= "\u9fff" for c in text)
    assert b"".join(legacy_bytes(t) for t in logprobs.tokens) == text.encode("utf-8")
    assert any(t.startswith("bytes:") for t in logprobs.tokens)
    # Two alternatives that are both part of a character keep two keys (U+FFFD would merge them).
    assert all(len(top) == 2 for top in logprobs.top_logprobs)
    chunks = list(client.completions.create(**ask, stream=True))
    tokens = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == text
    assert b"".join(legacy_bytes(t) for t in tokens) == text.encode("utf-8")


def events(base_url: str, path: str, body: dict) -> list:
    """The JSON of every `data:` event of a stream, read raw (the SDK hides whether a field was sent)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", base_url + path, json=body, headers=headers, timeout=120) as reply:
        lines = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_include_usage_sends_usage_null_on_every_chunk_but_the_last(base_url):
    # OpenAI: "All other chunks will also include a usage field, but with a null value."
    chat = {"model": LM, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 4, "stream": True}
    text = {"model": LM, "prompt": "The sky is", "max_tokens": 4, "stream": True}
    for path, body in (("/v1/chat/completions", chat), ("/v1/completions", text)):
        *chunks, last = events(base_url, path, body | {"stream_options": {"include_usage": True}})
        assert len(chunks) >= 2 and all("usage" in c and c["usage"] is None for c in chunks)
        counts = last["usage"]
        assert last["choices"] == [] and counts["completion_tokens"] >= 1
        assert counts["total_tokens"] == counts["prompt_tokens"] + counts["completion_tokens"]
        assert all("usage" not in c for c in events(base_url, path, body))  # not asked: no usage field
