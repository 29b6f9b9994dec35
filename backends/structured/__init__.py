"""Structured output: decoding under a grammar (JSON Schema, regex, a choice list, EBNF).

  grammar.py    `Constraint` (kind + source, validated; `ConstraintError`), compiled with xgrammar for
                one model's vocabulary (one compiler per tokenizer, shared)
  guided.py     `guided_stream`: the decoding page's token loop with the grammar's mask applied, each
                step recording the allowed tokens, the mass removed and the unconstrained pick;
                `run_guided` for a whole run, with or without a grammar
  tools.py      tool calling: OpenAI `tools` -> a call grammar, the prompt that lists them, the
                reply parsed back into calls (shared by the server and the agent page)
  extraction.py the shipped extraction set: free vs constrained, parsed and validated with jsonschema

Notes: docs/structured.md.
"""

from backends.structured.grammar import (
    CLOSE,
    KINDS,
    MAX_WHITESPACE,
    OPEN,
    WHITESPACE,
    Constraint,
    ConstraintError,
    compile_constraint,
)
from backends.structured.guided import GrammarGuide, GuidedResult, GuidedRun, GuidedStep, guided_stream, run_guided
from backends.structured.tools import (
    CHOICES,
    ToolCall,
    ToolSpec,
    parse_tool_output,
    pick_tools,
    render_messages,
    tool_constraint,
    tool_specs,
    tools_prompt,
)

__all__ = [
    "CHOICES",
    "CLOSE",
    "KINDS",
    "MAX_WHITESPACE",
    "OPEN",
    "WHITESPACE",
    "Constraint",
    "ConstraintError",
    "GrammarGuide",
    "GuidedResult",
    "GuidedRun",
    "GuidedStep",
    "ToolCall",
    "ToolSpec",
    "compile_constraint",
    "guided_stream",
    "parse_tool_output",
    "pick_tools",
    "render_messages",
    "run_guided",
    "tool_constraint",
    "tool_specs",
    "tools_prompt",
]
