// world/ — the procedural image/question generator that trains and tests the shipped model.
// Empty until the t2-tiny issue lands; the library target exists so the layering is fixed now.
