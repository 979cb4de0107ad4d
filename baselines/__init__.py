"""Baselines the paper's network is compared with; each registers itself in colorization.models.

koalarization: Deep Koalarization (Baldassarre, Morín, Rodés-Guirao 2017, arXiv 1712.03400).
"""
