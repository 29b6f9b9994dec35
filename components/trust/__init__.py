"""The Trust page's pieces, one tab each (each module's render() draws its tab): detect (self-consistency
and token uncertainty on the shipped questions, ROC), ground (RAG answers' sentences supported or not),
correct (retrieval and abstaining, before and after), guard (the guardrail pipeline, false positives),
redteam (garak against our server, with and without the guardrails)."""
