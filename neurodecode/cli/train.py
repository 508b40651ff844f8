"""``neurodecode train recipe=<name> [key=value ...]``: Hydra's command line for recipes.

Training is composed by Hydra (groups, ``--cfg job``, ``--help``, ``-m`` sweeps), so this
command hands its words to :func:`neurodecode.train.main` as Hydra expects them: in
``sys.argv``. Before that, a mistyped key or group option is refused with the closest valid
names (Hydra itself says only that it cannot override the key).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from neurodecode import train
from neurodecode.cli.options import config_keys, report_errors
from neurodecode.errors import ConfigError, did_you_mean
from neurodecode.resources import resource_dir

_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'")
_UNKNOWN_OPTION = re.compile(r"Could not find '([^'/]+)/([^']+)'.*?Available options in '[^']+':\n((?:\t.*\n)*)", re.S)  # fmt: skip


_HYDRA_OWN = {"-h", "--help", "-m", "--multirun", "-cn", "--config-name", "-cp",
              "--config-path", "-cd", "--config-dir", "--hydra-help"}  # fmt: skip


def check_overrides(overrides: list[str], prog: str) -> None:
    """Compose the training config; refuse an unknown key or group option with a hint.

    Other composition problems are left for Hydra to report as it always does.
    """
    with initialize_config_dir(str(resource_dir("configs")), version_base="1.3"):
        try:
            compose("train", overrides=overrides)
        except MissingConfigException as err:
            found = _UNKNOWN_OPTION.search(str(err) + "\n")
            if found:
                group, name, listed = found.groups()
                raise ConfigError(f"{prog}: {group} has no option {name!r}",
                                  hint=did_you_mean(name, listed.split())) from None  # fmt: skip
        except ConfigCompositionException as err:
            found = _UNKNOWN_KEY.match(str(err))
            if found:
                _refuse_key(found.group(1), overrides, prog)
        except Exception:  # anything else: Hydra's own report, when train.main composes
            return


def _refuse_key(key: str, overrides: list[str], prog: str) -> None:
    others = [item for item in overrides if item.partition("=")[0] != key]
    try:
        known = config_keys(compose("train", overrides=others))
    except Exception:  # the other words fail too: Hydra's own report
        return
    raise ConfigError(
        f"{prog}: unknown key {key!r}",
        hint=f"{did_you_mean(key, known)} A new key is added with +{key}=...",
    )


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode train") -> int:
    """Run :func:`neurodecode.train.main` on ``argv``; Hydra exits by itself on errors."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not _HYDRA_OWN & set(argv):
        overrides = [word for word in argv if "=" in word and not word.startswith("-")]
        status = report_errors(lambda: check_overrides(overrides, prog) or 0, config_status=2)
        if status:
            return status
    saved, sys.argv = sys.argv, [prog, *argv]
    try:
        train.main()
    finally:
        sys.argv = saved
    return 0
