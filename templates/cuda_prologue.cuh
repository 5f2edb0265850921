/* ---- templates/cuda_prologue.cuh: placeholder until the CUDA target lands ---- */
