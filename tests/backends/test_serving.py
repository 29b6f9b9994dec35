"""The OpenAI-compatible server, live on a free local port, driven by the official `openai` SDK.

Served greedy output equals the decoding page's own greedy loop (text, token count and every
logprob); streaming and non-streaming agree; every error has OpenAI's shape and the right code
(401, 404, 413, 429, and 400 for every bad request, so the SDK raises `openai.BadRequestError` as
it does against OpenAI; `param` names the field in OpenAI's notation); a LoRA adapter saved on
disk is served and answers like the LoRA page's "after" column; eight streaming clients at once
all finish."""

from __future__ import annotations

import copy
import threading
import time

import httpx
import numpy as np
import openai
import pytest
import torch

from backends.core.scheduler import ComputeScheduler
from backends.decoding import DecodingConfig, encode_prompt, eos_ids, generate_stream
from backends.models.cache import shared_cache
from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread

LM, EMB = "smollm2-135m-instruct", "all-minilm-l6-v2"
N = 12  # new tokens per request: short, so the file stays fast on two cores
PROMPT = "What is the capital of France?"


def live_server(settings: ServerSettings) -> ServerThread:
    """uvicorn serving `create_app(settings)` on a thread of this process (one model cache with the test)."""
    return ServerThread(settings)


@pytest.fixture(scope="module")
def base_url():
    with live_server(ServerSettings(gradio=False, max_tokens=64)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=120)


def in_app_greedy(prompt: str, n: int, chat: bool = True):
    """What the decoding page's greedy column produces: its text (up to end-of-sequence) and steps."""
    loaded = shared_cache().get(LM)
    steps = list(
        generate_stream(
            loaded,
            encode_prompt(loaded, prompt, chat=chat),
            DecodingConfig(strategy="greedy", max_new_tokens=n),
            top_n=3,
        )
    )
    kept = [s for s in steps if s.token_id not in eos_ids(loaded)]
    return "".join(s.piece for s in kept), kept, len(steps)


def test_models_lists_the_registry_models(client):
    ids = [m.id for m in client.models.list()]
    assert LM in ids and EMB in ids
    assert client.models.retrieve(LM).id == LM


def test_served_greedy_chat_equals_the_in_app_greedy_loop(client):
    text, steps, count = in_app_greedy(PROMPT, N)
    reply = client.chat.completions.create(
        model=LM,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=N,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    choice = reply.choices[0]
    assert choice.message.content == text and text.strip()
    assert reply.usage.completion_tokens == count
    assert reply.usage.prompt_tokens == len(encode_prompt(shared_cache().get(LM), PROMPT, chat=True))
    assert choice.finish_reason == ("length" if count == N and len(steps) == N else "stop")
    served = choice.logprobs.content
    assert [t.token for t in served] == [s.text for s in steps]
    assert np.allclose([t.logprob for t in served], [s.logprob for s in steps], atol=1e-5)
    assert [a.token for a in served[0].top_logprobs] == [a.text for a in steps[0].top]

    # The same answer streamed: a role chunk, content chunks, a finish chunk, usage, then [DONE].
    chunks = list(
        client.chat.completions.create(
            model=LM,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=N,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == count


def test_completions_raw_prompt_logprobs_and_stop(client):
    prompt = "The capital of France is"
    text, steps, _ = in_app_greedy(prompt, 6, chat=False)
    reply = client.completions.create(model=LM, prompt=prompt, max_tokens=6, temperature=0, logprobs=2)
    assert reply.choices[0].text == text
    assert reply.choices[0].logprobs.tokens == [s.text for s in steps]
    assert all(len(top) == 2 for top in reply.choices[0].logprobs.top_logprobs)
    # A stop sequence ends the answer and never reaches the client, streamed or not.
    cut = text.strip().split()[0]
    stopped = client.completions.create(model=LM, prompt=prompt, max_tokens=6, temperature=0, stop=[cut])
    assert stopped.choices[0].finish_reason == "stop" and cut not in stopped.choices[0].text
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model=LM, prompt=prompt, max_tokens=6, temperature=0, stop=[cut], stream=True
        )
        if c.choices
    )
    assert streamed == stopped.choices[0].text == text[: text.index(cut)]


def test_seeded_sampling_repeats(client):
    ask = {
        "model": LM,
        "messages": [{"role": "user", "content": "Name a fruit."}],
        "max_tokens": 6,
        "temperature": 1.3,
        "top_p": 0.95,
        "seed": 7,
    }
    first, second = (client.chat.completions.create(**ask).choices[0].message.content for _ in range(2))
    assert first == second


def test_embeddings_equal_the_sentence_model_float_and_base64(client):
    texts = ["A cat sits on the mat.", "Quantum chromodynamics"]
    model = shared_cache().get(EMB, variant="sentence").model
    expected = model.encode(texts, normalize_embeddings=True)
    as_base64 = client.embeddings.create(model=EMB, input=texts)  # the SDK asks for base64 by default
    as_float = client.embeddings.create(model=EMB, input=texts, encoding_format="float")
    for reply in (as_base64, as_float):
        got = np.array([d.embedding for d in reply.data])
        assert got.shape == (2, 384) and np.allclose(got, expected, atol=1e-5)
    assert as_float.usage.prompt_tokens > 4
    # MiniLM was not trained for shortened (Matryoshka) vectors: a cut is refused, its own size is not.
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMB, input="hello", dimensions=8, encoding_format="float")
    error = caught.value.body
    assert error["param"] == "dimensions" and EMB in error["message"] and "Matryoshka" in error["message"]
    full = client.embeddings.create(model=EMB, input=texts, dimensions=384, encoding_format="float")
    assert np.allclose([d.embedding for d in full.data], expected, atol=1e-5)


@pytest.mark.parametrize(
    "ask, error, words, param",
    [
        ({"model": "no-such-model"}, openai.NotFoundError, "does not exist", "model"),
        ({"model": EMB}, openai.BadRequestError, "embedding model", "model"),
        ({"model": LM, "max_tokens": 65}, openai.BadRequestError, "limit of 64", "max_tokens"),
        ({"model": LM, "temperature": 5}, openai.BadRequestError, "temperature", "temperature"),
        ({"model": LM, "n": 2}, openai.BadRequestError, "n:", "n"),
        ({"model": LM, "extra_body": {"bogus": 1}}, openai.BadRequestError, "bogus", "bogus"),
        ({"model": LM, "frequency_penalty": 0.5}, openai.BadRequestError, "frequency_penalty", "frequency_penalty"),
        (
            {"model": LM, "messages": [{"role": "robot", "content": "Hi"}]},
            openai.BadRequestError,
            "robot",
            "messages.[0].role",
        ),
        ({"model": LM, "top_logprobs": 2}, openai.BadRequestError, "logprobs=true", "top_logprobs"),
        (
            {"model": LM, "stream_options": {"include_usage": True}},
            openai.BadRequestError,
            "stream=true",
            "stream_options",
        ),
    ],
)
def test_errors_have_openai_shape(client, ask, error, words, param):
    """OpenAI (and vLLM) answer a bad request with 400, so the SDK raises BadRequestError."""
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**({"messages": [{"role": "user", "content": "Hi"}]} | ask))
    assert type(caught.value) is error and caught.value.status_code == (404 if error is openai.NotFoundError else 400)
    body = caught.value.body
    assert set(body) == {"message", "type", "param", "code"} and body["type"] == "invalid_request_error"
    assert words in body["message"] and body["param"] == param


def test_a_prompt_past_the_context_is_a_400_context_length_exceeded(client):
    long = "word " * 9000  # about 9000 tokens: SmolLM2 reads 8192
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=LM, messages=[{"role": "user", "content": long}], max_tokens=5)
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=LM, prompt=long, max_tokens=5)
    assert caught.value.code == "context_length_exceeded" and caught.value.param == "prompt"


def test_empty_prompt_unknown_route_and_body_limit(base_url, client):
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.chat.completions.create(model=LM, messages=[{"role": "user", "content": "  "}])
    bad_json = httpx.post(
        base_url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(base_url + "/v1/nothing-here").json()["error"]["code"] == "not_found"
    with live_server(ServerSettings(gradio=False, max_body_bytes=2048)) as small:
        big = {"model": LM, "messages": [{"role": "user", "content": "x" * 5000}]}
        reply = httpx.post(small + "/v1/chat/completions", json=big)
        assert reply.status_code == 413 and "2 KB" in reply.json()["error"]["message"]
        # A chunked body (no Content-Length) is counted as it arrives.
        chunked = httpx.post(
            small + "/v1/chat/completions",
            content=iter([b"{" + b" " * 4096 + b"}"]),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413


def test_api_key_is_required_when_set():
    with live_server(ServerSettings(gradio=False, api_key="sk-local-secret")) as url:
        with pytest.raises(openai.AuthenticationError) as caught:
            openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
        assert caught.value.body["code"] == "invalid_api_key" and "sk-local-secret" not in str(caught.value.body)
        assert httpx.get(url + "/health").status_code == 200  # health stays open for load balancers
        ok = openai.OpenAI(base_url=url + "/v1", api_key="sk-local-secret", max_retries=0)
        assert LM in [m.id for m in ok.models.list()]


def test_a_full_compute_queue_answers_429():
    scheduler = ComputeScheduler(slots=1, max_waiting=1)
    shared_cache().get(LM)  # loaded before the queue is blocked
    hold, waiting = threading.Event(), threading.Event()

    def occupy(flag):
        with scheduler.turn("test"):
            flag.set()
            hold.wait(30)

    running = threading.Event()
    holders = [threading.Thread(target=occupy, args=(running,))]
    holders[0].start()
    running.wait(10)
    holders.append(threading.Thread(target=occupy, args=(waiting,)))  # waits: the queue is now full
    holders[1].start()
    while scheduler.state().waiting < 1:
        time.sleep(0.01)
    try:
        with live_server(ServerSettings(gradio=False, scheduler=scheduler)) as url:
            sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            for stream in (False, True):
                with pytest.raises(openai.RateLimitError) as caught:
                    sdk.chat.completions.create(
                        model=LM, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, stream=stream
                    )
                assert caught.value.body["code"] == "queue_full"
                assert caught.value.response.headers["retry-after"] == "1"
            assert httpx.get(url + "/health").json()["queue"]["waiting"] == 1
    finally:
        hold.set()
        for t in holders:
            t.join(10)


def test_eight_concurrent_streaming_clients_all_complete(client):
    results, errors = {}, []

    def ask(i):
        try:
            stream = client.chat.completions.create(
                model=LM,
                messages=[{"role": "user", "content": f"Count to {i}."}],
                max_tokens=6,
                temperature=0,
                stream=True,
            )
            chunks = list(stream)
            results[i] = (
                "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
                chunks[-1].choices[0].finish_reason,
            )
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == [] and len(results) == 8
    assert all(text and finish in ("stop", "length") for text, finish in results.values())
    assert results[3][0] == in_app_greedy("Count to 3.", 6)[0]  # interleaving changes no answer


def test_a_saved_lora_adapter_is_served_and_answers_like_the_lora_page(tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    from backends.lora import adapters as A
    from backends.lora.train import generate

    monkeypatch.setenv("LLMPG_ADAPTERS_DIR", str(tmp_path))
    base = shared_cache().get(LM)
    torch.manual_seed(0)
    config = LoraConfig(
        r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    trained = get_peft_model(copy.deepcopy(base.model), config)  # random B: the answer changes
    A.save_adapter(trained, tmp_path / "pirate", LM)
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "adapter_model.bin").write_bytes(b"never unpickled")
    from backends.serving import adapters_dir, saved_adapters

    assert adapters_dir() == tmp_path and [m.id for m in saved_adapters()] == [f"{LM}+pirate"]
    prompt = "Where do penguins live?"
    after = generate(trained, base.tokenizer, prompt, 8)
    with live_server(ServerSettings(gradio=False)) as url:
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=300)
        ids = [m.id for m in sdk.models.list()]
        assert f"{LM}+pirate" in ids and not any("pickled" in i for i in ids)
        reply = sdk.chat.completions.create(
            model=f"{LM}+pirate", messages=[{"role": "user", "content": prompt}], max_tokens=8, temperature=0
        )
    assert reply.choices[0].message.content.strip() == after
    assert after != generate(base.model, base.tokenizer, prompt, 8)


def test_the_local_server_runs_once_per_process_and_refuses_a_busy_port():
    from backends.serving.local import LocalServer, free_port

    server, port = LocalServer(), free_port()
    url = server.start(port, ServerSettings(gradio=False))
    try:
        assert server.running and httpx.get(url + "/health").json()["status"] == "ok"
        assert server.start(port) == url  # already running there: the same server
        with pytest.raises(OSError, match="already runs"):
            server.start(free_port())
        with pytest.raises(OSError, match="in use"):
            LocalServer().start(port)
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health")
