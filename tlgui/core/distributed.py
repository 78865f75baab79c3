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


#: Where a failing rank leaves its reason for the others, in the rendezvous store.
FAILURE_KEY = "tlgui/failure/{rank}"


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
        """What this rank's ``error`` means for the training: :class:`PeerFailed` with the
        reason another rank left when that one failed first (this rank's error, a lost
        connection or torchrun's signal, only follows from it); otherwise ``error`` itself,
        whose reason is left for the others."""
        if not self.distributed:
            return error
        store = _rendezvous_store()
        if store is None:
            return error
        try:
            for rank in range(self.world_size):
                key = FAILURE_KEY.format(rank=rank)
                if rank != self.rank and store.check([key]):
                    reason = store.get(key).decode("utf-8", "replace")
                    return PeerFailed(f"process {rank + 1} of {self.world_size} failed: "
                                      f"{reason}")
            store.set(FAILURE_KEY.format(rank=self.rank), one_line(error))
        except Exception:  # the store went with the process that held it: nothing to add
            pass
        return error


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
            raise DistributedError(f"process {rank} has local rank {local}, but this machine "
                                   f"has {count} GPU(s): start at most {count} processes "
                                   "per machine (--nproc_per_node)")
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
