// experts/ — the expert registry and the dispatch strategies (prompt, classifier expert, few-shot CEM).
// Empty until the adaptation issue lands; the library target exists so the layering is fixed now.
