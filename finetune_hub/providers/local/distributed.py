"""Several processes and machines for one local job, through torchrun (`torch.distributed.run`,
what `accelerate launch` starts underneath): DDP by default, FSDP for a model that does not fit
one device.

The worker the backend starts becomes a supervisor: it launches `world = num_processes x
num_machines` training processes on this machine's share, waits for them and reports a crash.
Each process trains on its slice of every global batch (`batch_size` is per process, as TRL's
`per_device_train_batch_size`); global rank 0 alone writes the run folder (status, events,
metrics, checkpoints, the adapter), so one job still makes one run folder and one adapter.

>>> launch_command("runs/ftj_1", {"num_processes": 2})[3:6]
['--standalone', '--nproc-per-node', '2']
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

#: The port rank 0 listens on when several machines train together and none is given.
DEFAULT_PORT = 29500


def world_size(options: dict[str, Any]) -> int:
    """How many training processes a job's options ask for, all machines together."""
    return int(options.get("num_processes") or 1) * int(options.get("num_machines") or 1)


def launch_command(run_path: str, options: dict[str, Any]) -> list[str]:
    """The torchrun command that trains the run folder `run_path` with the job's options
    (`num_processes` per machine, `num_machines`, `machine_rank`, `main_process_ip`,
    `main_process_port`)."""
    procs = int(options.get("num_processes") or 1)
    machines = int(options.get("num_machines") or 1)
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if machines == 1:
        cmd += ["--standalone", "--nproc-per-node", str(procs)]
    else:
        cmd += [
            "--nproc-per-node",
            str(procs),
            "--nnodes",
            str(machines),
            "--node-rank",
            str(int(options.get("machine_rank") or 0)),
            "--master-addr",
            str(options.get("main_process_ip")),
            "--master-port",
            str(int(options.get("main_process_port") or DEFAULT_PORT)),
        ]
    return [*cmd, "-m", "finetune_hub.providers.local.worker", "--rank", run_path]


@dataclass
class Dist:
    """This process's place in a run: one process (`world == 1`) or one rank of several.

    >>> Dist().main, Dist(world=2, rank=1).main
    (True, False)
    """

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder (global rank 0)."""
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> Dist:
        """The rank torchrun gave this process (`WORLD_SIZE`, `RANK`, `LOCAL_RANK`)."""
        env = os.environ
        return cls(
            world=int(env.get("WORLD_SIZE", "1")),
            rank=int(env.get("RANK", "0")),
            local_rank=int(env.get("LOCAL_RANK", "0")),
        )

    def start(self, device: str) -> str:
        """Join the process group (gloo on CPU, NCCL on CUDA); returns this rank's device."""
        if not self.on:
            return device
        import torch
        import torch.distributed as dist

        if device.startswith("cuda"):
            device = f"cuda:{self.local_rank}"
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return device

    def sum(self, values: list[float], device: str) -> list[float]:
        """`values` summed over all ranks (a no-op for one process)."""
        if not self.on:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return [float(v) for v in t.tolist()]

    def agree(self, flag: bool, device: str) -> bool:
        """Rank 0's `flag` on every rank (so all stop at the same step)."""
        if not self.on:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], device=device)
        dist.broadcast(t, 0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.on:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.on:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def wrap(module: Any, dist: Dist, device: str, strategy: str = "ddp") -> Any:
    """`module` wrapped for several processes: DDP (gradients averaged after each backward), or
    FSDP (parameters sharded over the ranks: `fully_shard` on each decoder layer and the whole).
    One process: `module` as it is."""
    if not dist.on:
        return module
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in _decoder_layers(module):
            fully_shard(layer)
        fully_shard(module)
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [int(device.split(":")[1])] if device.startswith("cuda:") else None
    return DistributedDataParallel(module, device_ids=ids)


def _decoder_layers(module: Any) -> list[Any]:
    import torch

    for sub in module.modules():
        if isinstance(sub, torch.nn.ModuleList) and len(sub) and "Layer" in type(sub[0]).__name__:
            return list(sub)
    return []
