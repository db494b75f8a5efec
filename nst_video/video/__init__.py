"""Video math on arrays: optical flow, warping, consistency masks, scene cuts."""
