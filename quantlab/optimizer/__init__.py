"""Parameter search: grids, optuna studies, ranking, walk-forward.

The package is called ``optimizer`` so that ``quantlab.optimize`` stays the function.
"""
