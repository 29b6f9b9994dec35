"""Agents: a tool-calling loop on the in-app model, every step kept, measured.

- calculator.py    arithmetic parsed with `ast` and walked over allowed nodes only (never eval)
- units.py         unit conversion tables (length, mass, time, volume) and temperature formulas
- facts.py         the shipped country fact table (assets/datasets/agent_facts.json), date arithmetic
- documents.py     what `search_documents` searches: a RAG collection (the RAG package's), the
                   sample PDF's, or fixed passages; <document> delimiting
- toolbox.py       the tools: OpenAI schema + Python function, jsonschema validation, `run_tool`
- loop.py          `run_agent` (the trace of steps, what stops a run), `replay` (branch at an edited step),
                   `resume` (a run paused for approval of a side-effecting call, approved or declined)
- remote.py        the model step on a remote OpenAI-compatible server (`engine=`: the sidebar's engine)
- router.py        tool retrieval: the tools offered ranked by MiniLM similarity to their descriptions and examples
- memory.py        conversation memory strategies (full, window, extractive summary) and their tokens
- injection.py     prompt injection through a tool result; the three defences
- evaluate.py      `tool_choice_accuracy`, `injection_rates` (bench/agents.py)
- langchain_code.py the same agent as LangGraph code against `make serve`

Tool calls go through backends.structured (SmolLM2's tool format under a grammar). Notes: docs/agents.md.
"""

from backends.agents.documents import Passage, collection_search, fixed_search, sample_collection
from backends.agents.evaluate import heldout_requests, injection_rates, shipped_requests, tool_choice_accuracy
from backends.agents.injection import DEFENCES, as_confirmed, run_injection, shipped_injections
from backends.agents.langchain_code import langgraph_code
from backends.agents.loop import AWAITING, STOPS, AgentConfig, Step, Trace, prompt_ids, replay, resume, run_agent
from backends.agents.memory import STRATEGIES, memory_table, shipped_dialogue
from backends.agents.router import ToolScore, rank_tools, routed_tools
from backends.agents.toolbox import TOOL_NAMES, TOOLS, Context, Tool, run_tool, validate_arguments

__all__ = [
    "AWAITING",
    "DEFENCES",
    "STOPS",
    "STRATEGIES",
    "TOOLS",
    "TOOL_NAMES",
    "AgentConfig",
    "Context",
    "Passage",
    "Step",
    "Tool",
    "ToolScore",
    "Trace",
    "as_confirmed",
    "collection_search",
    "fixed_search",
    "heldout_requests",
    "injection_rates",
    "langgraph_code",
    "memory_table",
    "prompt_ids",
    "rank_tools",
    "replay",
    "resume",
    "routed_tools",
    "run_agent",
    "run_injection",
    "run_tool",
    "sample_collection",
    "shipped_dialogue",
    "shipped_injections",
    "shipped_requests",
    "tool_choice_accuracy",
    "validate_arguments",
]
