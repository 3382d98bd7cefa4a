// svf/ — SVD cache (LAPACKE), z-vector experts, recomposition, the REINFORCE trainer.
// Empty until the SVF issue lands; the library target exists so the layering is fixed now.
