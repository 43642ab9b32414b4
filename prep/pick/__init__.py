"""Analysis of footage (shots, faces, speech) and the choice of a window."""
