"""What every benchmark reports about where it ran: the CPU name (neurodecode's own, as
results.json and docs/results.md report it), the machine line and the resident memory."""

from pathlib import Path

from neurodecode.run.record import cpu_name


def machine(device: str) -> str:
    """A short description of the machine the figures come from."""
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    return f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def current_rss_kib() -> int:
    """This process's resident memory (KiB), from ``/proc/self/status``; 0 elsewhere."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
