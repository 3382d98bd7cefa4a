// fusion/ — the LLaVA projector, image-token splicing, anyres packing: the whole VLM.
// Empty until the vision issue lands; the library target exists so the layering is fixed now.
