"""The same agent written with LangGraph against the app's OpenAI-compatible server (`make serve`).

A snippet, not run here: neither `langgraph` nor `langchain` is installed in this environment
(`langchain_openai` is), so it says `pip install langgraph langchain-openai`. The server applies
the same tool grammar to `tools` / `tool_choice`, so the calls parse the same way.
"""

from __future__ import annotations

from backends.agents.loop import AgentConfig
from backends.agents.toolbox import TOOLS

TEMPLATE = '''# pip install langgraph langchain-openai   (not installed in this app's environment)
# Start the app's OpenAI-compatible server first:  make serve
import json

from langchain_core.tools import StructuredTool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent

SCHEMAS = json.loads(r"""{schemas}""")


def make_tool(schema, fn):
    return StructuredTool.from_function(
        func=fn, name=schema["name"], description=schema["description"], args_schema=schema["parameters"]
    )


# Your own Python functions, one per tool (the app's are in backends/agents/toolbox.py):
FUNCTIONS = {{
{functions}
}}

llm = ChatOpenAI(base_url="http://localhost:8000/v1", api_key="not-needed", model="smollm2-135m-instruct",
                 temperature=0, max_tokens={max_new_tokens})
agent = create_react_agent(
    llm.bind_tools([s for s in SCHEMAS], tool_choice="{tool_choice}"),
    tools=[make_tool(s, FUNCTIONS[s["name"]]) for s in SCHEMAS],
)
state = agent.invoke({{"messages": [("user", {question!r})]}}, {{"recursion_limit": {recursion}}})
for message in state["messages"]:  # the trace: human, AI (tool_calls), tool results, final answer
    message.pretty_print()
'''


def langgraph_code(question: str, config: AgentConfig) -> str:
    """LangGraph's prebuilt ReAct agent with the page's tools, tool choice and step limit."""
    import json

    schemas = [TOOLS[n].openai()["function"] for n in config.tools]
    functions = "\n".join(f'    "{n}": lambda **kw: ...,  # {TOOLS[n].description}' for n in config.tools)
    return TEMPLATE.format(
        schemas=json.dumps(schemas, indent=1, ensure_ascii=False),
        functions=functions,
        max_new_tokens=config.max_new_tokens,
        tool_choice=config.tool_choice,
        question=question,
        recursion=2 * config.max_steps + 1,  # one model node + one tool node per step, then the answer
    )
