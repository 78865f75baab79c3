"""The command line: ``tlgui scan | train | models | weights | sample`` (and the commands of
:mod:`.cli_runs`, :mod:`.cli_inspect` and :mod:`.cli_audit`).

Every failure ends with one line on stderr saying what is wrong and a non-zero exit status;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .core.errors import UserError, one_line
from .core.units import format_duration as _duration

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_STOPPED = 130
#: What a shell reports for a program ended by SIGPIPE (128 + 13): its reader went away.
EXIT_BROKEN_PIPE = 141

#: The largest seed: numpy's generators take no more than 32 bits.
MAX_SEED = 2**32 - 1
#: Input sizes, in pixels, that every backbone can take (VGG halves its input five times).
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 4096


class CliError(UserError):
    """A user-facing error: printed as one line."""


class Parser(argparse.ArgumentParser):
    """argparse with every usage error on one line: the command, the option and the problem
    (the usage itself is one ``--help`` away)."""

    def error(self, message: str):
        if _which_process():  # of the processes torchrun started, the first to fail says it
            from .core.distributed import elect_first_failure

            if not elect_first_failure(ValueError(message)):
                self.exit(EXIT_USAGE)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _range_words(low, high, low_open: bool = False, high_open: bool = False) -> str:
    words = []
    if low is not None:
        words.append(f"more than {low}" if low_open else f"at least {low}")
    if high is not None:
        words.append(f"less than {high}" if high_open else f"at most {high}")
    return " and ".join(words)


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (no upper limit if None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be {_range_words(low, high)}, not {text}")
        return value

    return parse


def float_range(low: float | None, high: float | None = None, low_open: bool = False,
                high_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number between ``low`` and ``high``; an open end excludes
    the bound itself."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid float value: '{text}'") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(
                f"must be {_range_words(low, high, low_open, high_open)}, not {text}")
        return value

    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
seed_int = int_range(0, MAX_SEED)
input_size = int_range(MIN_INPUT_SIZE, MAX_INPUT_SIZE)
positive_float = float_range(0, low_open=True)
non_negative_float = float_range(0)
#: A share strictly between 0 and 1, such as the validation fraction.
fraction = float_range(0, 1, low_open=True, high_open=True)
#: A probability that may be 0 but not 1, such as dropout.
probability = float_range(0, 1, high_open=True)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="*", metavar="DATA",
                   help="one folder with a sub-folder per class, or several folders, one per class")
    p.add_argument("--sample", action="store_true",
                   help="use the built-in sample data set (drawn shapes, made on first use)")
    p.add_argument("--test", metavar="DIR", help="a separate test folder with the same classes")
    p.add_argument("--val-fraction", type=fraction, default=0.2, metavar="F",
                   help="fraction of each class held out for validation (default 0.2)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed for the split and training")


class _VersionAction(argparse.Action):
    """``--version``: read when asked (package metadata), not at every start."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the versions of tlgui and what it runs on, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from .versions import version_line

        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tlgui",
        description="Transfer learning on your own images. Without a command, the window opens.",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--sample", action="store_true",
                        help="open the window with the built-in sample data set loaded")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("scan", help="check image folders and print the scan report")
    _add_data_args(p)
    p.add_argument("--all-skipped", action="store_true", help="list every skipped file")

    p = sub.add_parser("train", help="fine-tune a pretrained backbone on image folders",
                       epilog="On several GPUs or machines: torchrun --nproc_per_node N -m "
                              "tlgui train … (see the README).")
    _add_data_args(p)
    p.add_argument("--model", default="vgg16", help="backbone (see 'tlgui models'; default vgg16)")
    p.add_argument("--weights", default="imagenet", metavar="imagenet|none|FILE",
                   help="starting weights: ImageNet, random (none), a .pth file or a tlgui "
                        "checkpoint / run folder")
    p.add_argument("--strategy", default="frozen", choices=("frozen", "partial", "full"),
                   help="frozen backbone (feature extraction), fine-tune the last blocks, or all")
    p.add_argument("--trainable-blocks", type=positive_int, default=1, metavar="N",
                   help="with --strategy partial: how many of the last blocks train (default 1)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=1e-3,
                   help="head learning rate (default 1e-3)")
    p.add_argument("--backbone-lr-factor", type=positive_float, metavar="F",
                   help="backbone learning rate = F × head learning rate (default 0.1 with "
                        "pretrained weights, 1 with --weights none)")
    p.add_argument("--target-precision", type=float_range(0, 1, low_open=True), default=0.95,
                   metavar="P", help="predictions less sure than the confidence at which this "
                                     "share of the validation images' predictions is right "
                                     "are 'not sure' (default 0.95)")
    p.add_argument("--dropout", type=probability, default=0.5, metavar="P",
                   help="dropout probability in the new head (default 0.5)")
    p.add_argument("--hidden", type=non_negative_int, default=256,
                   help="hidden width of the new head; 0 for a single linear layer")
    p.add_argument("--compare-dropout", action="store_true",
                   help="train the model with and without dropout side by side")
    p.add_argument("--image-size", type=input_size, metavar="PX",
                   help="network input size; smaller is faster (default: the weights' own)")
    p.add_argument("--augment", action="store_true", help="random crops, flips and colour jitter")
    p.add_argument("--schedule", default="cosine", choices=("cosine", "step", "none"))
    p.add_argument("--early-stopping", type=non_negative_int, default=0, metavar="PATIENCE",
                   help="stop a run after this many epochs without a better validation accuracy")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--workers", type=int_range(-1), default=-1,
                   help="data-loading processes (-1: auto)")
    p.add_argument("--no-download", action="store_true",
                   help="never download weights; fail if they are not cached")
    p.add_argument("--no-feature-cache", action="store_true",
                   help="run the frozen backbone every epoch instead of caching its features")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<date-time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the training in --out from its last complete epoch")

    sub.add_parser("models", help="list the backbones and whether their weights are cached")

    p = sub.add_parser("weights", help="download ImageNet weights or import a weights file")
    wsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    w = wsub.add_parser("download", help="download a backbone's ImageNet weights into the cache")
    w.add_argument("model")
    w = wsub.add_parser("import", help="copy the official ImageNet weights file into the cache")
    w.add_argument("model")
    w.add_argument("file")

    from .cli_audit import add_parsers as add_audit_parsers
    from .cli_inspect import add_parser as add_inspect_parser
    from .cli_runs import add_parsers as add_run_parsers

    add_run_parsers(sub)
    add_inspect_parser(sub)
    add_audit_parsers(sub)

    p = sub.add_parser("follow", help="print a training's progress from its run folder's "
                                      "log (one running elsewhere, say), until it ends")
    p.add_argument("run", help="the run folder")
    p.add_argument("--quiet-minutes", type=float, default=None, metavar="M",
                   help="give up after M minutes without news (default 10)")

    p = sub.add_parser("sample", help="write the sample data set into a folder")
    p.add_argument("folder", nargs="?", help="where to write it (default: print the cached copy)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the process's arguments); the exit status."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # 'tlgui scan … | head': the reader has what it wanted. Stop quietly, as programs ended
        # by SIGPIPE do, and point stdout at devnull so that Python's last flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from .gui.app import main as gui_main

        return gui_main(sample=args.sample)
    from .cli_audit import cmd_audit, cmd_features
    from .cli_inspect import run as cmd_inspect
    from .cli_runs import cmd_evaluate, cmd_export, cmd_predict

    handler = {"scan": cmd_scan, "train": cmd_train, "models": cmd_models,
               "weights": cmd_weights, "sample": cmd_sample, "inspect": cmd_inspect,
               "evaluate": cmd_evaluate, "predict": cmd_predict,
               "export": cmd_export, "audit": cmd_audit,
               "features": cmd_features, "follow": cmd_follow}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        if not _which_process() or os.environ.get("RANK") == "0":  # one line for them all
            print("tlgui: interrupted", file=sys.stderr)
        return EXIT_STOPPED
    except BrokenPipeError:
        raise
    except Exception as e:
        if args.debug:
            raise
        from .core.distributed import PeerFailed, elect_first_failure, lost_peer, signalled

        if signalled():  # cut short by Ctrl+C or torchrun's signal: a stop, not a failure
            if os.environ.get("RANK", "0") == "0" and not isinstance(e, PeerFailed):
                print("tlgui: interrupted", file=sys.stderr)
            return EXIT_STOPPED if not isinstance(e, PeerFailed) else EXIT_ERROR
        # Of the processes torchrun started, the one that failed first says why; the others
        # stop because it did (an error they all meet is said once).
        if isinstance(e, PeerFailed) or not elect_first_failure(e):
            return EXIT_ERROR
        text = ("another process ended without a word (killed?); --resume continues from "
                "the last complete epoch") if lost_peer(e) else one_line(e)
        print(f"tlgui: error{_which_process()}: {text}", file=sys.stderr)
        return EXIT_ERROR


def _which_process() -> str:
    """Which of the processes torchrun started failed (nothing for a lone process)."""
    world, rank = os.environ.get("WORLD_SIZE", "1"), os.environ.get("RANK", "0")
    if world.isdigit() and rank.isdigit() and int(world) > 1:
        return f" (process {int(rank) + 1} of {world})"
    return ""


def _data_paths(args) -> list[str]:
    if args.sample:
        if args.data:
            raise CliError("give either DATA folders or --sample, not both")
        from .core.sample import ensure_sample_data

        return [str(ensure_sample_data())]
    if not args.data:
        raise CliError("no data: give one or more image folders, or --sample")
    return args.data


def _scan(args, quiet: bool = False):
    """Scan the data folders, then decode every image once in full (a file damaged in the
    middle passes the quick scan, and must not end a training half-way)."""
    from .core.data import scan, verify_images

    tty = not quiet and sys.stderr.isatty()
    progress = _progress_printer("checking files") if tty else None
    report = scan(_data_paths(args), test_folder=args.test, progress=progress)
    if progress:
        print(file=sys.stderr)
        progress = _progress_printer("decoding every image")
    report = verify_images(report, progress=progress)
    if progress:
        print(file=sys.stderr)
    return report


def _progress_printer(label: str):
    def show(done: int, total: int) -> None:
        print(f"\r{label}: {done}/{total}", end="", file=sys.stderr, flush=True)

    return show


def cmd_scan(args) -> int:
    from .core.data import count_labels, split

    report = _scan(args)
    data_split = split(report.items, args.val_fraction, args.seed)
    train_counts = count_labels(data_split.train, len(report.classes))
    val_counts = count_labels(data_split.val, len(report.classes))
    test_counts = report.test_counts()
    width = max([len(c) for c in report.classes] + [5])
    header = f"{'class':<{width}}  images  train  val"
    print(header + ("  test" if test_counts else ""))
    for i, name in enumerate(report.classes):
        line = f"{name:<{width}}  {report.counts()[i]:>6}  {train_counts[i]:>5}  {val_counts[i]:>3}"
        if test_counts:
            line += f"  {test_counts[i]:>4}"
        print(line)
    total = f"{'total':<{width}}  {len(report.items):>6}  {len(data_split.train):>5}  " \
            f"{len(data_split.val):>3}"
    print(total + (f"  {len(report.test_items):>4}" if test_counts else ""))
    warning = report.imbalance_warning()
    if warning:
        print(f"warning: {warning}")
    if report.skipped:
        print(f"\nskipped {len(report.skipped)} file(s):")
        shown = report.skipped if args.all_skipped else report.skipped[:50]
        for s in shown:
            print(f"  {s.path}: {s.reason}")
        if len(shown) < len(report.skipped):
            print(f"  … and {len(report.skipped) - len(shown)} more (--all-skipped lists them)")
    problems = report.problems()
    for problem in problems:
        print(f"tlgui: error: {problem}", file=sys.stderr)
    return EXIT_ERROR if problems else 0


def cmd_train(args) -> int:
    from .core.training import TrainConfig
    from .core.weights import resolve_source

    if args.resume and not args.out:
        raise CliError("--resume needs --out RUN_DIR")
    config = TrainConfig(
        model=args.model,
        weights=resolve_source(args.weights),
        strategy=args.strategy,
        trainable_blocks=args.trainable_blocks,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        backbone_lr_factor=args.backbone_lr_factor,
        dropout=args.dropout,
        hidden=args.hidden,
        compare_dropout=args.compare_dropout,
        image_size=args.image_size,
        augment=args.augment,
        schedule=args.schedule,
        early_stopping=args.early_stopping,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
        workers=args.workers,
        feature_cache=not args.no_feature_cache,
        allow_download=not args.no_download,
        target_precision=args.target_precision,
    )
    from .core.registry import backbone_info

    backbone_info(config.model)  # an unknown model fails here, before any work
    config.validate()  # and settings that cannot train, before the images are scanned
    from .core.preprocess import preprocessing_for

    preprocessing_for(config.model, config.image_size)  # a size the backbone cannot take
    from .core import distributed

    processes = distributed.SINGLE
    if distributed.launched():  # one of several processes torchrun started
        if not args.out:  # each process would name its own folder after its start time
            raise CliError("a distributed training needs --out RUN_DIR")
        processes, config.device = distributed.start(config.device)

        def on_signal(signum, frame):  # Ctrl+C; torchrun's SIGTERM when one process fails
            distributed.note_signal(signum)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise distributed.Terminated("ended by torchrun")

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    try:
        return _train(args, config, processes)
    except Exception as e:
        if processes.distributed:  # decided before leaving the group: leaving it is what the
            distributed.elect_first_failure(e)  # others see, and they must not speak first
        raise
    finally:
        distributed.stop()


def _train(args, config, processes) -> int:
    from .core.advice import strategy_warning
    from .core.control import RunControl
    from .core.training import Trainer

    def note(text: str) -> None:  # rank 0 speaks for all
        if processes.is_main:
            print(text, file=sys.stderr)

    if processes.distributed:
        device = "GPU" if processes.backend == "nccl" else "CPU"
        note(f"training distributed on {processes.world_size} processes "
             f"({processes.backend}, one {device} each)")
    if strategy_warning(config.strategy, config.weights):
        note(f"warning: {strategy_warning(config.strategy, config.weights)}")
    out = Path(args.out) if args.out else Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    # Rank 0 alone reads the run folder: the others may run where it is not (another node).
    fresh = not args.resume and processes.is_main
    if fresh and (out / "summary.json").exists():
        raise CliError(f"{out}: already holds a finished run; choose another --out or --resume")
    if fresh and (out / "config.json").exists():  # a training that was interrupted
        raise CliError(f"{out}: holds an unfinished run; continue it with --resume (same "
                       "settings) or choose another --out")
    report = _scan(args)
    for w in [report.imbalance_warning()] + [f"skipped {s.path}: {s.reason}"
                                              for s in report.skipped[:10]]:
        if w:
            note(f"warning: {w}")
    if len(report.skipped) > 10:
        note(f"warning: … {len(report.skipped) - 10} more skipped ('tlgui scan' lists them)")

    control = RunControl()
    if processes.distributed:
        # A stop after this batch would come at another batch on each process, and they
        # would wait for each other: Ctrl+C ends them all (torchrun passes it on), and
        # --resume continues from the last complete epoch.
        trainer = Trainer(config, report, out, on_event=_TrainPrinter(), control=control,
                          resume=args.resume, processes=processes)
        summary = trainer.run()
        if processes.is_main:
            _print_summary(summary, out)
        return 0
    printer = _TrainPrinter()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl+C again to abort)…", file=sys.stderr)
        control.stop()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        trainer = Trainer(config, report, out, on_event=printer, control=control,
                          resume=args.resume)
        summary = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    _print_summary(summary, out)
    return EXIT_STOPPED if summary["status"] == "stopped" else 0


class _TrainPrinter:
    """Prints training events: one line per epoch and run, a live line on a terminal."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.stage = None

    def __call__(self, event) -> None:
        from .core import events as ev

        if isinstance(event, ev.LogMessage):
            self._line(event.text)
        elif isinstance(event, ev.TrainingStarted):
            cache = ("; backbone features computed once and reused every epoch"
                     if event.feature_cache else "")
            self._line(f"training {' and '.join(event.runs)}: {event.train_size} training and "
                       f"{event.val_size} validation images, {event.epochs} "
                       f"epoch{'s' if event.epochs != 1 else ''}{cache}")
        elif isinstance(event, ev.StageProgress):
            if self.tty:
                eta = f", {_duration(event.eta_seconds)} left" if event.eta_seconds else ""
                print(f"\r{event.message}: {event.done}/{event.total}{eta}   ", end="",
                      file=sys.stderr, flush=True)
            elif self.stage != (event.stage, event.message):
                print(f"{event.message}…", file=sys.stderr, flush=True)
            self.stage = (event.stage, event.message)
            if self.tty and event.done >= event.total:
                print(file=sys.stderr)
        elif isinstance(event, ev.BatchFinished) and self.tty:
            losses = " ".join(f"{k} {v:.3f}" for k, v in event.losses.items())
            print(f"\repoch {event.epoch}/{event.epochs} batch {event.batch}/{event.batches} "
                  f"loss {losses}, {_duration(event.eta_seconds)} left   ",
                  end="", file=sys.stderr, flush=True)
        elif isinstance(event, ev.EpochFinished):
            best = " *" if event.improved else ""
            # Training accuracy and loss in evaluation mode, like the validation figures.
            self._line(
                f"epoch {event.epoch:>3}/{event.epochs} {event.run:<16} "
                f"train acc {event.train_acc_eval:6.1%} loss {event.train_loss_eval:.3f} | "
                + (f"val acc {event.val_acc:6.1%} loss {event.val_loss:.3f} | "
                   if not math.isnan(event.val_acc) else "no validation images | ") +
                f"{event.seconds:.1f} s, {_duration(event.eta_seconds)} left{best}"
            )

    def _line(self, text: str) -> None:
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr)
        print(text, flush=True)


#: How long ``tlgui follow`` waits for a run folder that is not written yet.
FOLLOW_START_SECONDS = 60.0


def cmd_follow(args) -> int:
    """``tlgui follow RUN``: the run folder's event log printed as ``tlgui train`` prints its
    events, read as it grows; the exit status says how the training ended."""
    from .core import events as ev
    from .core.event_log import LOG_NAME, QUIET_SECONDS, EventLogReader, TrainingFailed

    run = Path(args.run)
    quiet_limit = QUIET_SECONDS if args.quiet_minutes is None else args.quiet_minutes * 60
    waited = time.monotonic()
    if not (run / "config.json").is_file():
        print(f"waiting for {run} to be written (a training that has just started?)…",
              file=sys.stderr, flush=True)
    while not (run / "config.json").is_file():
        if time.monotonic() - waited >= min(quiet_limit, FOLLOW_START_SECONDS):
            print(f"tlgui: {run}: not a tlgui run folder (no config.json)", file=sys.stderr)
            return EXIT_ERROR
        time.sleep(0.5)
    reader = EventLogReader(run / LOG_NAME)
    printer = _TrainPrinter()
    said_skipped = False
    while True:
        for event in reader.read():
            printer(event)
            if isinstance(event, ev.TrainingFinished):
                try:
                    _print_summary(event.summary, run)
                except (KeyError, TypeError, ValueError, AttributeError):
                    print(f"training {event.status}")  # a summary of another shape
                return 0
            if isinstance(event, TrainingFailed):
                print(f"tlgui: the training failed: {event.message}", file=sys.stderr)
                return EXIT_ERROR
        if reader.log.skipped and not said_skipped:
            said_skipped = True
            print(f"tlgui: skipped what is not an event: {reader.log.first_problem}",
                  file=sys.stderr)
        quiet = reader.modified_seconds_ago()
        if quiet is None:  # no log (yet): as old as the run folder's settings
            quiet = max(0.0, time.time() - (run / "config.json").stat().st_mtime)
        if quiet >= quiet_limit:
            print(f"tlgui: no news from {run / LOG_NAME} for {quiet / 60:.1f} min: the "
                  f"training was probably killed ('tlgui train DATA --out {run} --resume' "
                  f"continues it)",
                  file=sys.stderr)
            return EXIT_ERROR
        time.sleep(1.0)


def _pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def _print_summary(summary: dict, out: Path) -> None:
    print(f"\n{summary['status']}: {summary['model']} on {len(summary['classes'])} classes")
    for name, r in summary["runs"].items():
        gap = "–" if r["train_val_gap"] is None else f"{r['train_val_gap'] * 100:+.1f} pts"
        # A run stopped before its first epoch ended has no best epoch to name.
        epoch = "" if r["best_epoch"] is None else f" (epoch {r['best_epoch']})"
        line = (f"  {name:<16} best val {_pct(r['best_val_acc'])}{epoch}, "
                f"last val {_pct(r['last_val_acc'])}, train {_pct(r['last_train_acc'])} "
                f"(eval mode; train−val gap {gap})")
        if r.get("best_by") == "training accuracy":  # no validation images: nothing to show
            line = (f"  {name:<16} no validation images; "
                    + ("no complete epoch" if r["best_epoch"] is None else
                       f"best epoch {r['best_epoch']} by training accuracy, last train "
                       f"{_pct(r['last_train_acc'])}"))
        if r["test_acc"] is not None:
            line += f", test {_pct(r['test_acc'])}"
        print(line)
        for warning in r.get("warnings", []):
            print(f"  warning: {name}: {warning}")
    if summary.get("verdict"):
        print(summary["verdict"]["text"])
    for path in summary.get("unreadable", []):
        print(f"left out: {path} (it could not be decoded during training)")
    print(f"run folder: {out}")


def cmd_models(args) -> int:
    from .core.registry import backbone_info, backbone_names
    from .core.weights import cached_path, is_cached

    print(f"{'model':<20} {'params':>8} {'input':>9} {'top-1':>6} {'weights':>8}  cached")
    for name in backbone_names():
        info = backbone_info(name)
        cached = "yes" if is_cached(name) else "no (download or import)"
        # --image-size may go lower, except where the network cannot
        size = (f"{info.crop_size} only" if info.fixed_size else
                f"{info.crop_size} min" if info.min_size >= info.crop_size else
                str(info.crop_size))
        print(f"{name:<20} {info.num_params / 1e6:>7.1f}M {size:>9} "
              f"{info.imagenet_top1:>5.1f}% {info.weights_mb:>6.0f}MB  {cached}")
    print(f"\nweights cache: {cached_path(backbone_names()[0]).parent}")
    return 0


def cmd_weights(args) -> int:
    from .core.control import RunControl
    from .core.weights import download_imagenet, import_imagenet_file

    if args.action == "import":
        target = import_imagenet_file(args.model, args.file)
        print(f"imported {args.file} as {target}")
        return 0
    control = RunControl()
    previous = signal.signal(signal.SIGINT, lambda *a: control.stop())
    try:
        target = download_imagenet(
            args.model, progress=_progress_printer(f"downloading {args.model}"), cancel=control
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    print(f"\nsaved {target}")
    return 0


def cmd_sample(args) -> int:
    from .core.sample import ensure_sample_data

    folder = ensure_sample_data(os.path.abspath(args.folder) if args.folder else None)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
