// vision/ — image loading (stb_image), HF preprocessing and the ViT encoders (CLIP, SigLIP).
// Empty until the vision issue lands; the library target exists so the layering is fixed now.
