"""Commands on a trained run: ``tlgui evaluate``, ``tlgui predict`` and ``tlgui export``."""

from __future__ import annotations

import sys
from pathlib import Path

from .core.errors import one_line
from .core.predictions import prediction_rows, rows_csv


def add_parsers(sub) -> None:
    from .cli import float_range, non_negative_int

    p = sub.add_parser("evaluate", help="confusion matrix and per-class metrics of a run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder or a best.pt")
    p.add_argument("--run", help="with_dropout, without_dropout or model (default: the best)")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--mistakes", type=non_negative_int, default=10,
                   help="how many mistakes to list")
    p.add_argument("--percent", action="store_true",
                   help="the matrix as row percentages (each true class sums to 100)")
    add_compute_options(p)

    p = sub.add_parser("predict", help="classify images with a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder or a best.pt")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--run", help="with_dropout, without_dropout or model (default: the best)")
    p.add_argument("--csv", metavar="FILE", help="also write the table to a CSV file")
    p.add_argument("--every", type=float_range(0.01, None), default=1.0, metavar="SECONDS",
                   help="for a video file: classify one frame every SECONDS (default 1)")
    add_compute_options(p)

    p = sub.add_parser("export", help="ExportedProgram, TorchScript or ONNX file of a run, with "
                                      "a usage snippet, checked against the app")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder or a best.pt")
    p.add_argument("--run", help="with_dropout, without_dropout or model (default: the best)")
    p.add_argument("--format", default="torchscript", choices=("exported", "torchscript", "onnx"),
                   help="exported: torch.export's ExportedProgram (.pt2), the format PyTorch "
                        "recommends; torchscript (.pt, the default); onnx")
    p.add_argument("--out", metavar="FILE", help="default: <run>.pt2, .pt or .onnx here")
    p.add_argument("--no-check", action="store_true",
                   help="do not load the file back and compare its answers with the app's")


def add_compute_options(parser) -> None:
    """Where and in what batches the images are classified (evaluate and predict)."""
    from .cli import positive_int

    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="images classified at once (default 32)")


def cmd_evaluate(args) -> int:
    from .core.evaluation import (
        UNDEFINED_NOTE,
        decimal_text,
        evaluate_run,
        find_checkpoint,
        share_text,
    )

    checkpoint = find_checkpoint(args.run_dir, args.run)
    stages = StagePrinter() if sys.stderr.isatty() else None
    result = evaluate_run(checkpoint, args.split, device=args.device,
                          batch_size=args.batch_size,
                          progress=stages.progress if stages else None,
                          stage=stages.begin if stages else None)
    if stages:
        stages.end()
    classes = result.classes
    print(f"{checkpoint}: {args.split} accuracy {share_text(result.accuracy)} "
          f"on {len(result.paths)} images")
    print(matrix_text(classes, result.matrix(), percent=args.percent))
    width = max(len(c) for c in classes + ["class"])
    print(f"\n{'class':<{width}}  precision  recall     F1  images")
    metrics = result.metrics()
    for name, m in zip(classes, metrics):
        print(f"{name:<{width}}  {share_text(m.precision):>9}  {share_text(m.recall):>6}  "
              f"{decimal_text(m.f1):>5}  {m.support:6}")
    if any(m.note() for m in metrics):
        print(UNDEFINED_NOTE)
    mistakes = result.mistakes()[: args.mistakes]
    if mistakes:
        print(f"\nmost confident mistakes ({len(result.mistakes())} in all):")
        for i in mistakes:
            print(f"  {result.paths[i]}: {classes[result.true[i]]} taken for "
                  f"{classes[result.pred[i]]} ({result.confidence[i]:.0%})")
    for path, reason in result.unreadable:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return 0


def matrix_text(classes, cm, percent: bool = False) -> str:
    from .core.evaluation import matrix_texts

    corner = "true \\ predicted"
    width = max(max(len(c) for c in classes), len(corner))
    cells = max(5, max(len(c) for c in classes))
    lines = [f"{corner:<{width}}  " + " ".join(f"{c:>{cells}}" for c in classes)]
    for name, texts in zip(classes, matrix_texts(cm, percent)):
        lines.append(f"{name:<{width}}  " + " ".join(f"{t:>{cells}}" for t in texts))
    return "\n".join(lines)


class StagePrinter:
    """Progress on the terminal, one line a stage: ``evaluating: 1200/5000``."""

    def __init__(self, label: str = ""):
        self.label = label
        self.shown = False

    def begin(self, label: str) -> None:
        self.end()
        self.label = label

    def progress(self, done: int, total: int) -> None:
        print(f"\r{self.label}: {done}/{total}", end="", file=sys.stderr, flush=True)
        self.shown = True

    def end(self) -> None:
        if self.shown:
            print(file=sys.stderr)
        self.shown = False


def cmd_predict(args) -> int:
    from .core.evaluation import find_checkpoint
    from .core.paths import atomic_write_text

    if args.csv and not Path(args.csv).expanduser().parent.is_dir():
        # Checked before any work, and never created: a mistyped path is the likelier story.
        raise ValueError(f"{Path(args.csv).parent}: no such folder for the CSV file")
    from .core.play import SourceError, is_video, predict_video
    from .core.predictions import Predictions

    checkpoint = find_checkpoint(args.run_dir, args.run)
    videos = [p for p in args.images if is_video(p) and Path(p).is_file()]
    images = [p for p in args.images if p not in videos]
    parts = []
    if images:
        stages = StagePrinter("classifying") if sys.stderr.isatty() else None
        rows, _ = prediction_rows(checkpoint, images, device=args.device,
                                  batch_size=args.batch_size,
                                  progress=stages.progress if stages else None)
        if stages:
            stages.end()
        parts.append(rows)
    unreadable_videos = []
    for video in videos:  # one line per sampled frame: VIDEO#t=SECONDS
        try:
            parts.append(predict_video(checkpoint, video, args.every, args.device))
        except SourceError as e:  # skipped with the reason, as an unreadable image is
            unreadable_videos.append((video, str(e).removeprefix(f"{video}: ")))
    if not parts:
        raise ValueError("no image or video could be read" + (
            f" (first: {unreadable_videos[0][0]}: {unreadable_videos[0][1]})"
            if unreadable_videos else ""))
    rows = Predictions.joined(parts)
    failed = rows.unreadable + unreadable_videos
    for path, name, p in rows:
        print(f"{p:6.1%}  {name:<20} {path}")
    for path, reason in failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if args.csv:
        atomic_write_text(args.csv, rows_csv(rows))
        print(f"wrote {args.csv}")
    if not rows:
        raise ValueError("no image could be read")
    return 0


def cmd_export(args) -> int:
    from .core.evaluation import find_checkpoint
    from .core.export import default_name, export

    checkpoint = find_checkpoint(args.run_dir, args.run)
    out = Path(args.out or default_name(checkpoint, args.format))
    model_file, usage = export(checkpoint, out, args.format)
    print(f"wrote {model_file}\nusage: {usage}")
    if not args.no_check:
        from .core.export import check_export, check_images

        try:
            images = check_images(checkpoint)
        except (OSError, ValueError) as e:  # a best.pt away from its run folder, say
            print(f"not checked: no images to check it on ({one_line(e)})")
            return 0
        print(check_export(model_file, usage, checkpoint, images, fmt=args.format).text())
    return 0
