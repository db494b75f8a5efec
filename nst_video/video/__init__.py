"""Video math on arrays: optical flow, warping, consistency masks, scene cuts; and the sizes
of coarse-to-fine levels."""
