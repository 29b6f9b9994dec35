"""Answer generation: the real offline SmolLM2 answering from retrieved pages of the shipped
sample PDF, and the OpenAI-compatible client against a real local HTTP server that streams
server-sent events the way the OpenAI API does (and fails the ways real servers fail)."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import pypdf
import pytest

from backends.models.cache import shared_cache
from backends.rag.citations import citations_for
from backends.rag.generators import (
    GeneratorError,
    LocalGenerator,
    OpenAICompatibleGenerator,
    generate,
    rewrite_question,
)
from backends.rag.prompting import build_messages
from backends.rag.types import Chunk, Hit
from tests.openai_server import ANSWER_PIECES, KEY, Handler

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "how_language_models_work.pdf"
N = 40  # new tokens: short, the machine is shared


# --- the local model -----------------------------------------------------------


@pytest.fixture(scope="module")
def lm():
    return shared_cache().get("smollm2-135m-instruct", device="cpu")


@pytest.fixture(scope="module")
def sample_hits():
    """Pages 3, 2, 1 of the sample PDF as retrieved chunks: the answer is on page 2, passage [2]."""
    pages = [p.extract_text() for p in pypdf.PdfReader(SAMPLE).pages]
    return [
        Hit(Chunk(page - 1, SAMPLE.name, page, pages[page - 1], 0), score=0.6 - 0.1 * rank, rank=rank)
        for rank, page in enumerate([3, 2, 1], start=1)
    ]


@pytest.fixture(scope="module")
def answer(lm, sample_hits):
    messages = build_messages(
        "How many dimensions does an all-MiniLM-L6-v2 vector have?", sample_hits, tokenizer=lm.tokenizer
    )
    generator = LocalGenerator(lm)
    return generator, messages, list(generator.stream(messages, max_new_tokens=N))


def test_local_answer_states_the_fact_and_cites_the_right_page(answer, sample_hits):
    _, _, pieces = answer
    text = "".join(pieces)
    assert "384" in text, text  # greedy SmolLM2-135M: "The all-MiniLM-L6-v2 vector has 384 dimensions."
    citations = citations_for(text, sample_hits)
    assert citations, text
    assert citations[0].hit.chunk.page == 2 and citations[0].number == 2
    assert "<|im_end|>" not in text  # stopped at end-of-sequence, which is not part of the answer


def test_local_stream_is_greedy_generate_in_pieces(answer, lm):
    generator, messages, pieces = answer
    assert len(pieces) >= 5 and all(pieces)
    ids = generator.prompt_ids(messages)
    import torch

    with torch.inference_mode():
        out = lm.model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False,
            num_beams=1,
            max_new_tokens=N,
        )
    assert "".join(pieces) == lm.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    assert generator.render(messages).startswith("<|im_start|>system\nAnswer the question using only")


def test_local_sampling_is_seeded(lm):
    messages = [{"role": "user", "content": "Name a colour."}]
    first = generate(LocalGenerator(lm, seed=3), messages, max_new_tokens=4, temperature=0.9)
    again = generate(LocalGenerator(lm, seed=3), messages, max_new_tokens=4, temperature=0.9)
    assert first and first == again


def test_local_rejects_a_prompt_beyond_the_context_and_bad_options(lm):
    generator = LocalGenerator(lm)
    huge = [{"role": "user", "content": "word " * 9000}]
    with pytest.raises(GeneratorError, match=r"exceeds smollm2-135m-instruct's context of 8192 tokens"):
        next(generator.stream(huge, max_new_tokens=8))
    with pytest.raises(ValueError, match="temperature=-1"):
        next(generator.stream([{"role": "user", "content": "hi"}], temperature=-1))
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        next(generator.stream([{"role": "user", "content": "hi"}], max_new_tokens=0))


# --- a real OpenAI-compatible server ---------------------------------------------


def _client(server, model="tiny", key=KEY, **kw):
    return OpenAICompatibleGenerator(server, model, api_key=key, **kw)


def test_streams_sse_pieces_and_sends_the_request(server):
    Handler.requests.clear()
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "Who founded it?"}]
    pieces = list(_client(server + "/").stream(messages, max_new_tokens=20, temperature=0.0))
    assert pieces == ANSWER_PIECES
    request = Handler.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == f"Bearer {KEY}"
    assert request["body"] == {
        "model": "tiny",
        "messages": messages,
        "stream": True,
        "max_tokens": 20,
        "temperature": 0.0,
    }


def test_whole_json_reply_and_no_key(server):
    Handler.requests.clear()
    assert generate(_client(server, "plain"), [{"role": "user", "content": "x"}]) == "all at once"
    with pytest.raises(GeneratorError):
        generate(_client(server, key=None), [{"role": "user", "content": "x"}])
    assert Handler.requests[-1]["auth"] is None  # no key, no Authorization header


def _error(client) -> GeneratorError:
    with pytest.raises(GeneratorError) as info:
        generate(client, [{"role": "user", "content": "x"}])
    return info.value


def test_http_errors_name_url_and_status_never_the_key(server):
    wrong = _error(_client(server, key=KEY + "-wrong"))
    assert wrong.status == 401 and wrong.url == server + "/chat/completions"
    assert "HTTP 401" in str(wrong) and "rejected the API key" in str(wrong) and server in str(wrong)
    assert KEY not in str(wrong) and "***" in str(wrong)  # the echoed key is redacted
    missing = _error(_client(server, "missing"))
    assert missing.status == 404 and "model 'missing'" in str(missing) and "does not exist" in str(missing)
    wrong_path = _error(_client(server.removesuffix("/v1")))
    assert wrong_path.status == 404 and "ends with /v1" in str(wrong_path)
    for err in (missing, wrong_path):
        assert KEY not in str(err) and KEY not in repr(err)


def test_malformed_and_cut_streams(server):
    broken = _error(_client(server, "broken"))
    assert "malformed stream event" in str(broken) and "'{not json'" in str(broken)
    html = _error(_client(server, "html"))
    assert "'text/html' but no chat-completions events" in str(html) and html.status == 200
    cut = _client(server, "cut").stream([{"role": "user", "content": "x"}])
    assert next(cut) == "Hel" and next(cut) == "lo"  # what came is kept; then the error
    with pytest.raises(GeneratorError, match="ended before the answer was complete"):
        next(cut)


def test_connection_refused_and_timeout(server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = _error(OpenAICompatibleGenerator(f"http://127.0.0.1:{port}/v1", "tiny", api_key=KEY))
    assert "Could not connect to" in str(refused) and str(port) in str(refused) and KEY not in str(refused)
    assert (
        refused.__cause__ is None and refused.__suppress_context__
    )  # no chained httpx request (its headers hold the key)
    slow = _error(_client(server, "slow", timeout=0.5))
    assert "did not answer within 0.5 s" in str(slow)


def test_key_is_not_in_repr_vars_or_pickle(server):
    client = _client(server)
    for text in (repr(client), str(client), repr(vars(client)), str(vars(client))):
        assert KEY not in text
    assert "api_key=set" in repr(client) and client.has_key
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(client)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(base_url="localhost:11434", model="m"), "not an http\\(s\\) URL"),
        (dict(base_url="", model="m"), "base_url=''"),
        (dict(base_url="http://user:pw@h/v1", model="m"), "must not hold a user name"),
        (dict(base_url="http://h/v1", model=" "), "model=' ' is empty"),
        (dict(base_url="http://h/v1", model="m", timeout=0), "timeout=0"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OpenAICompatibleGenerator(**kwargs)


# --- follow-up rewriting -----------------------------------------------------------

HISTORY = [
    {"role": "user", "content": "Who founded the Aurora station?"},
    {"role": "assistant", "content": "Ingrid Halvorsen [1]."},
]


def test_rewrite_question(server):
    Handler.requests.clear()
    # No history: the question as is, without asking any model (this one would fail: nothing listens).
    assert rewrite_question(OpenAICompatibleGenerator("http://127.0.0.1:9/v1", "m"), [], " When? ") == "When?"
    assert not Handler.requests
    assert rewrite_question(_client(server, "rewriter"), HISTORY, "When?") == "When was the Aurora station founded?"
    sent = Handler.requests[-1]["body"]["messages"][-1]["content"]
    assert "User: Who founded the Aurora station?" in sent and "Follow-up question: When?" in sent
    assert rewrite_question(_client(server, "mute"), HISTORY, "When?") == "When?"  # nothing usable: fall back
    assert rewrite_question(_client(server, "plain"), HISTORY, "When?") == "When?"  # "all at once" is no question
