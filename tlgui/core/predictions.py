"""Classifying image files with a trained run: the table the window and ``tlgui predict`` show,
and the CSV file both write."""

from __future__ import annotations

import csv
import io


def prediction_rows(checkpoint, paths, progress=None, cancel=None):
    """[(path, class, confidence)] and [(path, reason)] for images that cannot be read."""
    from .evaluation import image_files, predict_paths
    from .models import load_trained
    from .preprocess import Preprocessing

    net, ckpt = load_trained(checkpoint)
    files = image_files(paths)
    kept, probs, failed = predict_paths(net, Preprocessing.from_dict(ckpt["preprocessing"]),
                                        files, progress=progress, cancel=cancel)
    classes = ckpt["classes"]
    rows = [(p, classes[int(row.argmax())], float(row.max())) for p, row in zip(kept, probs)]
    return rows, failed


def rows_csv(rows) -> str:
    """The prediction table as CSV text: path, class, confidence (four decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "class", "confidence"])
    for path, name, p in rows:
        writer.writerow([path, name, f"{p:.4f}"])
    return out.getvalue()
