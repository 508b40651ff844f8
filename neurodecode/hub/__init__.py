"""Hugging Face Hub I/O: export, publish and load models safely.

An exported model is ``model.safetensors`` + ``config.json`` + ``README.md`` (see
:mod:`neurodecode.hub.format`). Publishing is ``python -m neurodecode.hub push run=<dir>
repo_id=<org/name>`` or :func:`push_to_hub`; loading is :func:`from_pretrained` (also
``neurodecode.from_pretrained``).
"""

from neurodecode.hub.export import (
    build_model,
    export_model,
    export_run,
    model_config,
    read_task_checkpoint,
)
from neurodecode.hub.format import FORMAT_VERSION
from neurodecode.hub.load import (
    Pretrained,
    check_contract,
    from_pretrained,
    load_weights,
    resolve_init_source,
)
from neurodecode.hub.publish import push_to_hub

__all__ = [
    "FORMAT_VERSION",
    "Pretrained",
    "build_model",
    "check_contract",
    "export_model",
    "export_run",
    "from_pretrained",
    "load_weights",
    "model_config",
    "push_to_hub",
    "read_task_checkpoint",
    "resolve_init_source",
]
