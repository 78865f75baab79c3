"""Training on several processes at once, as PyTorch's ``torchrun`` launches them.

``torchrun --nproc_per_node N -m tlgui train …`` starts N copies of ``tlgui train`` with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous address in their environment. Each
copy (a *rank*) trains the same model on its share of every batch; PyTorch's
DistributedDataParallel averages the gradients, so every rank takes the same step. NCCL
connects GPUs, gloo CPUs. Rank 0 alone writes the run folder and prints.

``--batch-size`` stays the size of one step's batch, whatever the number of processes: each
rank takes ``batch size ÷ N`` images of it, so that one setting gives the same training on one
process or on many.

:data:`SINGLE` stands for the one process of an ordinary training: its collectives return
what they are given, so the trainer has one code path.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from .errors import UserError, one_line

#: How long a rank waits for the others at a collective before it gives up (a peer that died
#: usually ends the job at once: torchrun stops the rest when one process exits).
TIMEOUT_MINUTES = 30


#: In the rendezvous store: how many processes failed, and the first one's reason.
FAILURES_KEY = "tlgui/failures"
FIRST_FAILURE_KEY = "tlgui/first-failure"
#: What a collective says when the process at the other end is gone (gloo, NCCL).
LOST_PEER_SIGNS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
                   "remote process exited", "NCCL communicator was aborted")


class DistributedError(ValueError):
    pass


class PeerFailed(UserError):
    """This rank stopped because another one failed (its collective lost its peer, or
    torchrun ended it); the message is the failed rank's own."""


class Terminated(UserError):
    """Ended by SIGTERM: what torchrun sends every process when one of them fails."""


@dataclass(frozen=True)
class Processes:
    """This process's place among the processes of one training."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder and prints (rank 0)."""
        return self.rank == 0

    def describe(self) -> str:
        return (f"process {self.rank + 1} of {self.world_size}" if self.distributed
                else "one process")

    # -- sharing work --------------------------------------------------------------------
    def share(self, sequence):
        """This rank's share of ``sequence``: every ``world_size``-th element from its rank
        (no element twice, none left out; shares differ in length by at most one)."""
        return sequence[self.rank::self.world_size] if self.distributed else sequence

    def local_batch_size(self, batch_size: int) -> int:
        """Images per step on this rank: its share of the batch."""
        return batch_size // self.world_size

    # -- collectives: every rank must call them, in the same order -----------------------
    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the ranks (the same tensor shape on each)."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        device = _collective_device(self)
        total = values.to(device, torch.float64)
        dist.all_reduce(total)
        return total.to(values.device)

    def gather(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # -- failing together ----------------------------------------------------------------
    def explain_failure(self, error: BaseException) -> BaseException:
        """What this rank's ``error`` means for the training: ``error`` itself when this
        rank failed first (its reason is left for the others); else :class:`PeerFailed`
        with the first one's reason (this rank's error, a lost connection or a signal from
        torchrun, only follows from it)."""
        if not self.distributed:
            return error
        if elect_first_failure(error):
            return error
        return PeerFailed(first_failure() or "another process failed")


#: The one process of an ordinary training.
SINGLE = Processes()


def _collective_device(processes: Processes) -> torch.device:
    """NCCL reduces tensors on this rank's GPU; gloo on the CPU."""
    if processes.backend == "nccl":
        return torch.device("cuda", processes.local_rank)
    return torch.device("cpu")


def _rendezvous_store():
    """A client of the store torchrun's processes met through (None where there is none)."""
    address, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT", "")
    if not address or not port.isdigit():
        return None
    try:
        from torch.distributed import TCPStore

        return TCPStore(address, int(port), is_master=False,
                        timeout=datetime.timedelta(seconds=5))
    except Exception:
        return None


_signals: list[int] = []  #: the signals this process was sent to end (Ctrl+C, torchrun's)


def note_signal(signum: int) -> None:
    """Remember that this process was told to end: an error that follows (a write cut short
    by the signal, a peer gone the same way) is part of the stop, not a failure."""
    _signals.append(signum)


def signalled() -> bool:
    return bool(_signals)


_election: list[bool] = []  #: this process's place among the failures, decided once


def elect_first_failure(error: BaseException) -> bool:
    """Whether this process is the first of the training's to fail (always, for a lone
    process), deciding it on the first call and leaving this process's reason for the others;
    later calls give the same answer. A process that only lost its peers (the connection
    closed) and finds no reason left by another says so instead of the network's words."""
    if _election:
        return _election[0]
    world, rank = _int_env("WORLD_SIZE", 1), _int_env("RANK", 0)
    first = True
    if world > 1:
        store = _rendezvous_store()
        if store is not None:
            try:
                first = store.add(FAILURES_KEY, 1) == 1
                if first:
                    reason = one_line(error)
                    if any(sign in reason for sign in LOST_PEER_SIGNS):
                        reason = ("another process ended without a word (killed?); "
                                  "--resume continues from the last complete epoch")
                    store.set(FIRST_FAILURE_KEY,
                              f"process {rank + 1} of {world} failed: {reason}")
            except Exception:  # the store went with the process that held it
                first = True
    _election.append(first)
    return first


def failure_elsewhere() -> str | None:
    """The first failed process's reason when one failed (an interrupted process asks: a
    signal that follows a failure is no stop of the user's), else None."""
    if _int_env("WORLD_SIZE", 1) <= 1:
        return None
    store = _rendezvous_store()
    try:
        if store is None or not store.check([FAILURES_KEY]):
            return None
    except Exception:
        return None
    return first_failure()


def first_failure() -> str | None:
    """The first failed process's reason, as it left it (waiting a moment for it)."""
    store = _rendezvous_store()
    if store is None:
        return None
    try:
        store.wait([FIRST_FAILURE_KEY], datetime.timedelta(seconds=3))
        return store.get(FIRST_FAILURE_KEY).decode("utf-8", "replace")
    except Exception:
        return None


def lost_peer(error: BaseException) -> bool:
    """Whether ``error`` is a collective's word that another process is gone."""
    return any(sign in str(error) for sign in LOST_PEER_SIGNS)


def launched() -> bool:
    """Whether this process is one of several that torchrun started."""
    return _int_env("WORLD_SIZE", 1) > 1


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"{name}={value!r} in the environment is not a whole number "
                               "(set by torchrun)") from None


def start(device_choice: str = "auto") -> tuple[Processes, str]:
    """Join the training's process group: ``(processes, device to train on)``.

    The device follows ``device_choice``: on CUDA each rank takes the GPU of its local rank
    and the ranks talk through NCCL; on the CPU through gloo. MPS has no backend.
    """
    import torch.distributed as dist

    world = _int_env("WORLD_SIZE", 1)
    rank = _int_env("RANK", 0)
    local = _int_env("LOCAL_RANK", 0)
    if not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is not one of 0 to {world - 1}")
    wants_cuda = device_choice.startswith("cuda") or (
        device_choice == "auto" and torch.cuda.is_available())
    if device_choice not in ("auto", "cpu", "cuda") and not device_choice.startswith("cuda"):
        raise DistributedError(f"device '{device_choice}' cannot train on several processes: "
                               "choose cuda or cpu")
    if wants_cuda:
        count = torch.cuda.device_count()
        if local >= count:
            if count == 0:
                raise DistributedError(f"device '{device_choice}': this machine has no CUDA "
                                       "GPU; train on the CPU with --device cpu")
            raise DistributedError(f"process {rank + 1} of {world} is the machine's process "
                                   f"{local + 1}, but it has {count} GPU(s): start at most "
                                   f"{count} processes per machine (--nproc_per_node)")
        torch.cuda.set_device(local)
        backend, device = "nccl", f"cuda:{local}"
    else:
        backend, device = "gloo", "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=TIMEOUT_MINUTES))
    return Processes(rank, world, local, backend), device


def stop() -> None:
    """Leave the process group (at the end of the training, on every rank)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
