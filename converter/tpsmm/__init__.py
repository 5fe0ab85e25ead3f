"""TPSMM, the Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022; upstream
yoyo-nb/Thin-Plate-Spline-Motion-Model, MIT): a second model family beside FOMM, built
on the same shared layers (blocks, grid_sample, hull, anti-alias)."""
