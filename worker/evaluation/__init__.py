"""``guardstream eval``: run a labelled set through the worker's own stages and measure.

dataset   labelled JSON Lines → events + labels (bad lines: line number, reason)
images    the offline image source (``--images-dir``) behind the worker's fetcher
run       the one module that calls the worker's stage functions and model loading
metrics   precision, recall, F1, FPR, AUPRC, ROC AUC (scikit-learn), thresholds
plots     PR / ROC curves and the score histogram (matplotlib, Agg)
report    scores.jsonl, metrics.json, thresholds.csv, the printed table, report.html
progress  a progress line on a terminal (events/s, ETA)
"""
