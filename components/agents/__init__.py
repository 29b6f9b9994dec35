"""The Agents page's pieces.

- run_view.py: the Run tab (question, tools, tool choice, step limit; the trace; edit a step and branch).
- trace_view.py: one trace drawn as expandable steps (messages, raw output, call, result or error).
- memory_view.py: the Memory tab (strategies side by side, tokens per turn).
- injection_view.py: the Injection tab (one poisoned document under each defence; the measured rates).
"""
