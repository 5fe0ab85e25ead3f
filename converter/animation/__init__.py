"""A bundle animating a picture, streaming: the per-batch loop (loop), the best-frame scan
(best_frame), keypoint drawing (drawing), the progress line (progress) and the `animate` and
`reconstruct` jobs (jobs). Imports neither torch nor tensorflow unless the tf or torch
backend is asked for."""
