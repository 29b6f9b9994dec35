"""One request, three ways to send it: curl, the official `openai` SDK, LangChain (what the serving page shows).

`request_body` builds the JSON body of an endpoint from a few settings; `snippets` writes the same
request as code a learner can paste. A key is never written into a snippet: it reads
$LLMPG_API_KEY from the environment, as a server would.
"""

from __future__ import annotations

import json

ENDPOINTS = ("chat", "completions", "embeddings", "models")
PATHS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "models": "/v1/models",
}
KINDS = {"chat": "causal-lm", "completions": "causal-lm", "embeddings": "embedding", "models": None}


def request_body(
    endpoint: str,
    model: str,
    text: str,
    max_tokens: int = 32,
    temperature: float = 0.0,
    stream: bool = False,
    logprobs: int = 0,
) -> dict | None:
    """The JSON body for `endpoint` (None for GET /v1/models)."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint={endpoint!r} is unknown; pick one of {', '.join(ENDPOINTS)}.")
    if endpoint == "models":
        return None
    if endpoint == "embeddings":
        return {"model": model, "input": text, "encoding_format": "float"}
    body = {"model": model, "max_tokens": int(max_tokens), "temperature": float(temperature)}
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": text}]
        if logprobs:
            body.update(logprobs=True, top_logprobs=int(logprobs))
    else:
        body["prompt"] = text
        if logprobs:
            body["logprobs"] = min(int(logprobs), 5)
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def curl(base_url: str, endpoint: str, body: dict | None, with_key: bool = False) -> str:
    url = base_url.rstrip("/") + PATHS[endpoint]
    lines = [f"curl {'-N ' if body and body.get('stream') else ''}{url}"]
    if with_key:
        lines.append('-H "Authorization: Bearer $LLMPG_API_KEY"')
    if body is not None:
        payload = json.dumps(body, ensure_ascii=False).replace("'", "'\\''")
        lines += ['-H "Content-Type: application/json"', f"-d '{payload}'"]
    return " \\\n  ".join(lines)


def _client(base_url: str, with_key: bool) -> str:
    key = 'os.environ["LLMPG_API_KEY"]' if with_key else '"unused"'
    return (
        f"import os\nfrom openai import OpenAI\n\n"
        f"client = OpenAI(base_url={base_url.rstrip('/') + '/v1'!r}, api_key={key})\n"
    )


def _kwargs(body: dict, skip: tuple[str, ...]) -> str:
    return ",\n    ".join(f"{k}={v!r}" for k, v in body.items() if k not in skip)


def openai_snippet(base_url: str, endpoint: str, body: dict | None, with_key: bool = False) -> str:
    head = _client(base_url, with_key)
    if endpoint == "models":
        return head + "print([m.id for m in client.models.list()])\n"
    if endpoint == "embeddings":
        return head + (
            f"reply = client.embeddings.create(\n    {_kwargs(body, ())},\n)\n"
            "print(len(reply.data[0].embedding), reply.data[0].embedding[:5])\n"
        )
    create = "client.chat.completions.create" if endpoint == "chat" else "client.completions.create"
    call = f"{create}(\n    {_kwargs(body, ())},\n)"
    piece = "chunk.choices[0].delta.content" if endpoint == "chat" else "chunk.choices[0].text"
    if body.get("stream"):
        return head + (
            f"for chunk in {call}:\n    if chunk.choices:\n        print({piece} or '', end='', "
            "flush=True)\n    elif chunk.usage:\n        print('\\n', chunk.usage)\n"
        )
    answer = "reply.choices[0].message.content" if endpoint == "chat" else "reply.choices[0].text"
    return head + f"reply = {call}\nprint({answer})\nprint(reply.usage)\n"


def langchain_snippet(base_url: str, endpoint: str, body: dict | None, with_key: bool = False) -> str:
    key = 'os.environ["LLMPG_API_KEY"]' if with_key else '"unused"'
    v1 = base_url.rstrip("/") + "/v1"
    if endpoint == "embeddings":
        return (
            "import os\nfrom langchain_openai import OpenAIEmbeddings\n\n"
            f"embeddings = OpenAIEmbeddings(model={body['model']!r}, base_url={v1!r}, api_key={key},\n"
            "                              check_embedding_ctx_length=False)  # the model has its own tokenizer\n"
            f"vector = embeddings.embed_query({body['input']!r})\nprint(len(vector), vector[:5])\n"
        )
    if endpoint == "models":
        return "# LangChain has no model listing: use the openai SDK (client.models.list()).\n"
    if endpoint == "completions":
        cls, text = "OpenAI", body["prompt"]
        make = (
            f"llm = OpenAI(model={body['model']!r}, base_url={v1!r}, api_key={key},\n"
            f"             temperature={body['temperature']!r}, max_tokens={body['max_tokens']!r})\n"
        )
    else:
        cls, text = "ChatOpenAI", body["messages"][0]["content"]
        make = (
            f"llm = ChatOpenAI(model={body['model']!r}, base_url={v1!r}, api_key={key},\n"
            f"                 temperature={body['temperature']!r}, max_tokens={body['max_tokens']!r})\n"
        )
    head = f"import os\nfrom langchain_openai import {cls}\n\n{make}"
    content = ".content" if cls == "ChatOpenAI" else ""
    if body.get("stream"):
        return head + f"for chunk in llm.stream({text!r}):\n    print(chunk{content}, end='', flush=True)\n"
    return head + f"print(llm.invoke({text!r}){content})\n"


def snippets(base_url: str, endpoint: str, body: dict | None, with_key: bool = False) -> dict[str, str]:
    return {
        "curl": curl(base_url, endpoint, body, with_key),
        "openai": openai_snippet(base_url, endpoint, body, with_key),
        "langchain": langchain_snippet(base_url, endpoint, body, with_key),
    }
