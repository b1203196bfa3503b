"""scikit-learn estimators trained by fastbp: `MLPClassifier` and `MLPRegressor`, drop-ins for
sklearn.neural_network's, with the same parameters, attributes and mathematics, and more
(sample and class weights, dropout, batch normalisation, every fastbp activation, threads).

Needs scikit-learn >= 1.6 (``pip install "fastbp[sklearn]"``); no other fastbp module imports
scikit-learn.
"""
from fastbp.sklearn.classifier import MLPClassifier
from fastbp.sklearn.regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
