// server/ — the HTTP API (OpenAI-compatible) and the static demo page.
// Empty until the serve issue lands; the library target exists so the layering is fixed now.
