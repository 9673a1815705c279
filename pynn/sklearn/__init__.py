"""scikit-learn estimators on pynn's engine: `MLPClassifier` and `MLPRegressor`.

scikit-learn is an optional dependency (``pip install scikit-learn``).
"""
from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
