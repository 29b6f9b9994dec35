"""LangChain's standard integration suites against our own server, live on a free local port.

`ChatModelIntegrationTests` drives `langchain_openai.ChatOpenAI` (tool calling, tool_choice,
structured output through `response_format` json_schema, JSON mode, usage, streaming, async) and
`EmbeddingsIntegrationTests` drives `OpenAIEmbeddings`, both pointed at `make serve`'s app
(`ServerThread`, no network: the suites' image/PDF/audio tests are off, HF_HUB_OFFLINE is set by
tests/conftest.py). A test that fails only because a 135M model is too small to give the answer
the suite asks for (not because the server is wrong) is marked xfail below with its reason;
docs/serving.md lists them.

This folder runs before tests/e2e on purpose: the browser tests' Playwright (sync API) leaves an
event loop running in the main thread for the rest of the session, and the suites' async tests
then fail with "Runner.run() cannot be called from a running event loop".
"""

from __future__ import annotations

import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests

from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread

LM, EMB, KEY = "smollm2-135m-instruct", "all-minilm-l6-v2", "sk-suite"
MAX_TOKENS = 96  # room for a call or a short JSON object (48 cut jokes mid-string); still minutes on two cores

_server = ServerThread(ServerSettings(gradio=False, max_tokens=MAX_TOKENS, api_key=KEY))


@pytest.fixture(scope="module", autouse=True)
def live_server():
    _server.start()
    yield
    _server.stop()


def base_url() -> str:
    if _server.port is None:  # the fixture starts it; properties may be read before (collection)
        _server.start()
    return _server.url + "/v1"


# The suite's async tests carry no asyncio mark (it expects asyncio_mode=auto): mark the classes, one loop
# for the module (ChatOpenAI shares one cached async HTTP client, which must not outlive its loop).
@pytest.mark.asyncio(loop_scope="module")
class TestServedChatModel(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict:
        return {
            "model": LM,
            "base_url": base_url(),
            "api_key": KEY,
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
            "stream_usage": True,
            "timeout": 300,
            "max_retries": 0,
        }

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def structured_output_kwargs(self) -> dict:
        return {"method": "json_schema"}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_model_override(self) -> bool:
        return False

    # A grammar fixes the shape of the answer, not the length of a string inside it. In these three
    # the model (greedy, as the suite asks) repeats itself inside one string until max_tokens: the
    # JSON or the call is cut (LengthFinishReasonError, no parsed call). With 256 tokens, the same.
    @pytest.mark.xfail(reason="135M model: the joke's string repeats until max_tokens, so the JSON is cut")
    def test_structured_output_pydantic_2_v1(self, model) -> None:
        super().test_structured_output_pydantic_2_v1(model)

    @pytest.mark.xfail(reason="135M model: the joke's string repeats until max_tokens, so the JSON is cut")
    def test_structured_output_optional_param(self, model) -> None:
        super().test_structured_output_optional_param(model)

    @pytest.mark.xfail(reason="135M model: the company description repeats until max_tokens, so the call is cut")
    def test_unicode_tool_call_integration(self, model, *, tool_choice=None, force_tool_call=True) -> None:
        super().test_unicode_tool_call_integration(model, tool_choice=tool_choice, force_tool_call=force_tool_call)

    @pytest.mark.xfail(reason="135M model: under tool_choice auto it answers the weather question in text, no call")
    def test_agent_loop(self, model) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(
        reason="135M model: under json_object (no schema, so any JSON object) it writes objects where the "
        "prompt asks for strings ({'setup': {'setup_result': ...}}), which the suite's Joke model rejects"
    )
    def test_json_mode(self, model) -> None:
        super().test_json_mode(model)


@pytest.mark.asyncio(loop_scope="module")
class TestServedEmbeddings(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[OpenAIEmbeddings]:
        return OpenAIEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        # Offline there is no tiktoken vocabulary to pre-split texts with, and the model has its own tokenizer.
        return {
            "model": EMB,
            "base_url": base_url(),
            "api_key": KEY,
            "check_embedding_ctx_length": False,
            "tiktoken_enabled": False,
            "max_retries": 0,
        }
