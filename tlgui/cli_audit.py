"""``tlgui audit`` (images probably mislabelled, duplicated, leaking or out of place) and
``tlgui features`` (what the feature store holds, and clearing it)."""

from __future__ import annotations

import sys

from .core.units import format_bytes


def add_parsers(sub) -> None:
    from .cli import _add_data_args, input_size

    p = sub.add_parser("audit", help="find images that are probably mislabelled, duplicated, "
                                     "leaking between training and validation, or outliers")
    _add_data_args(p)
    p.add_argument("--model", default="resnet18",
                   help="backbone whose features are compared (default resnet18)")
    p.add_argument("--weights", default="imagenet", metavar="imagenet|none|FILE",
                   help="its weights (default ImageNet; 'none' works on simple images)")
    p.add_argument("--image-size", type=input_size, metavar="PX",
                   help="network input size (default: the weights' own)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--csv", metavar="FILE",
                   help="write the findings to FILE (path,issue,label,suggested,score,detail)")
    p.add_argument("--limit", type=int, default=30, metavar="N",
                   help="findings printed per kind (default 30; the CSV has them all)")
    p.add_argument("--no-download", action="store_true",
                   help="never download weights; fail if they are not cached")

    p = sub.add_parser("features", help="what the feature store holds (backbone features "
                                        "kept between trainings); --clear empties it")
    p.add_argument("--clear", action="store_true", help="remove every stored feature")


def cmd_audit(args) -> int:
    from .cli import _scan
    from .core.audit import ISSUES, run_audit
    from .core.paths import atomic_write_text

    report = _scan(args)
    tty = sys.stderr.isatty()

    def progress(stage: str, done: int, total: int) -> None:
        count = f": {done:,}/{total:,}" if total else "…"
        print(f"\r\033[K{stage}{count}", end="", file=sys.stderr, flush=True)

    result = run_audit(report, args.model, args.weights, args.image_size, args.device,
                       args.val_fraction, args.seed, allow_download=not args.no_download,
                       progress=progress if tty else None)
    if tty:
        print(file=sys.stderr)
    counts = result.counts()
    print(f"audited {result.images:,} images of {len(report.classes)} classes with "
          f"{args.model} features ({args.weights} weights)")
    print(result.trust_line())
    for note in result.notes:
        print(note[:1].upper() + note[1:] + ".")
    for issue in ISSUES:
        found = [f for f in result.findings if f.issue == issue]
        if not found:
            continue
        print(f"\n{issue} ({len(found):,}), most suspicious first:")
        for f in found[: max(args.limit, 0)]:
            moved = f" → {f.suggested}" if f.suggested else ""
            print(f"  {f.score:6.3f}  {f.path}  [{f.label}{moved}]  {f.detail}")
        if len(found) > args.limit:
            print(f"  … and {len(found) - args.limit:,} more"
                  + (" (all in the CSV)" if args.csv else " (--csv FILE lists them all)"))
    for path, reason in result.unreadable:
        print(f"left out: {path}: {reason}")
    summary = ", ".join(f"{counts[i]:,} {i}" for i in ISSUES)
    if args.csv:
        atomic_write_text(args.csv, result.csv_text())
        print(f"\nfindings: {summary}; written to {args.csv}")
    else:
        print(f"\nfindings: {summary}")
    return 0


def cmd_features(args) -> int:
    from .core.feature_store import FeatureStore, limit_bytes

    store = FeatureStore()
    if args.clear:
        freed = store.clear()
        print(f"feature store {store.root} cleared: {format_bytes(freed)} freed")
        return 0
    contents = store.contents()
    print(f"feature store: {store.root}")
    if not contents:
        print("empty")
        return 0
    print(f"{'backbone':<20} {'frozen blocks':>13} {'input':>6} {'images':>9} {'size':>10}"
          f"  last used")
    import time

    for k in contents:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.last_used))
        print(f"{k.backbone:<20} {k.cut:>13} {k.image_size:>4}px {k.images:>9,} "
              f"{format_bytes(k.size_bytes):>10}  {used}")
    print(f"total {format_bytes(store.size_bytes())} (limit {format_bytes(limit_bytes())}; "
          f"TLGUI_FEATURE_STORE_GB changes it)")
    return 0
