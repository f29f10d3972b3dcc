"""Financial-news sentiment pipeline: the code behind pipectl's data, train, evaluate and inference
notebooks.

The notebooks stay thin (widgets in, one call, exit value out); everything testable lives here.
Importing this package is cheap on purpose: heavy libraries (pandas, scikit-learn, MLflow,
matplotlib) are imported inside the functions that need them, so a notebook reaches its first cell
quickly.
"""

__version__ = "0.1.0"
