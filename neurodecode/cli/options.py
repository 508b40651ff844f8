"""The one way commands read their arguments: ``key=value`` overrides, as Hydra writes them.

Every command of ``neurodecode`` (and of ``python -m neurodecode.<package>``) takes its
settings as ``key=value`` words: ``subjects=[1,2]``, ``private=true``, ``post.threshold=0.4``.
This module turns those words into values, names unknown keys and values with a
did-you-mean hint, and prints a refused command or a failed job as one plain paragraph
instead of a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from neurodecode.errors import ConfigError, NeurodecodeError, did_you_mean, one_paragraph

# exit status of a job over many recordings when some failed and the others were written
PARTIAL = 3


@dataclass(frozen=True)
class Option:
    """One ``key=value`` setting a command accepts.

    Attributes
    ----------
    name : str
        The key.
    kind : type
        ``str`` (the text as typed: ``revision=1`` stays ``"1"``), ``int``, ``float``,
        ``bool`` (``true``/``false``) or ``object`` (read as Hydra reads values: lists,
        numbers, ``null``).
    default : Any
        Value when the key is not given (``None``: the key is absent from the result).
    required : bool
        Refuse the command when the key is not given.
    choices : tuple of str, optional
        The accepted values.
    help : str
        One line for ``--help``.
    """

    name: str
    kind: type = str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] | None = None
    help: str = ""


def split_overrides(items: Sequence[str], command: str) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` → ``{"a": "1", "b.c": "x"}``, refusing anything else.

    Parameters
    ----------
    items : sequence of str
        The words after the command.
    command : str
        The command, for the messages (e.g. ``"neurodecode hub push"``).
    """
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or key != key.strip():
            raise ConfigError(
                f"{command}: expected key=value, got {item!r}",
                hint=f"run `{command} --help` for the keys",
            )
        if key in values:
            raise ConfigError(f"{command}: {key} is given twice ({values[key]!r} and {value!r})")
        values[key] = value
    return values


def check_known(keys: Iterable[str], known: Iterable[str], command: str) -> None:
    """Refuse keys outside ``known``, with the closest known keys as a hint."""
    known = sorted(set(known))
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ConfigError(
            f"{command}: unknown option(s) {unknown}",
            hint="; ".join(f"{key}: {did_you_mean(key, known)}" for key in unknown),
        )


def check_choice(name: str, value: str, choices: Iterable[str], command: str) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming the closest ones."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"{command}: {name} {value!r} is not one of the choices",
            hint=did_you_mean(value, choices),
        )


def parse_options(items: Sequence[str], options: Sequence[Option], command: str) -> dict[str, Any]:
    """Values of ``items`` typed and checked against ``options``, defaults filled in.

    Raises
    ------
    ConfigError
        For a word that is not ``key=value``, an unknown key (with a did-you-mean hint), a
        required key left out, a value of the wrong kind or outside its choices.
    """
    raw = split_overrides(items, command)
    spec = {option.name: option for option in options}
    check_known(raw, spec, command)
    missing = [option.name for option in options if option.required and option.name not in raw]
    if missing:
        raise ConfigError(f"{command}: missing {missing}", hint=usage_line(command, options))
    values = {name: option.default for name, option in spec.items() if option.default is not None}
    for key, text in raw.items():
        option = spec[key]
        values[key] = _convert(text, option, command)
        if option.choices is not None:
            check_choice(key, values[key], option.choices, command)
    return values


def _convert(text: str, option: Option, command: str) -> Any:
    if option.kind is str:
        return text
    if option.kind is object:
        return dotlist_values({option.name: text}, command)[option.name]
    if option.kind is bool:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ConfigError(f"{command}: {option.name} must be true or false, got {text!r}")
    try:
        return option.kind(text)
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(option.kind, option.kind.__name__)
        raise ConfigError(f"{command}: {option.name} must be {kind}, got {text!r}") from None


def usage_line(command: str, options: Sequence[Option]) -> str:
    """``command key=<key> [key=<key>]``: required keys first, optional ones in brackets."""
    words = [f"{o.name}=..." for o in options if o.required]
    words += [f"[{o.name}=...]" for o in options if not o.required]
    return " ".join([command, *words])


def describe_options(options: Sequence[Option]) -> str:
    """One line per option: key, help, and whether it is required or its default."""
    return "\n".join(f"  {o.name:<16} {o.help} ({_note(o)})" for o in options)


def _note(option: Option) -> str:
    if option.required:
        note = "required"
    elif option.default is None:
        note = "optional"
    else:
        default = option.default
        note = f"default {str(default).lower() if option.kind is bool else default}"
    return note if option.choices is None else f"{note}; one of " + ", ".join(option.choices)


def config_keys(config: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted key of ``config``: its nodes and its leaves (``post``, ``post.threshold``)."""
    keys = []
    for key, value in config.items_ex(resolve=False):
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, DictConfig):
            keys += config_keys(value, f"{dotted}.")
    return keys


def _dotlist(raw: Mapping[str, str], command: str) -> DictConfig:
    try:
        return OmegaConf.from_dotlist([f"{key}={value}" for key, value in raw.items()])
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        reason = getattr(err, "msg", None) or getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{command}: invalid setting: {reason}") from None


def dotlist_values(raw: Mapping[str, str], command: str) -> dict[str, Any]:
    """``{"a.b": "[1,2]"}`` → ``{"a": {"b": [1, 2]}}``: dotted keys nested, values as YAML."""
    return OmegaConf.to_container(_dotlist(raw, command))


def merge_overrides(config: DictConfig, items: Sequence[str], command: str) -> DictConfig:
    """``config`` with ``items`` applied: only existing keys, values typed as in YAML.

    Raises
    ------
    ConfigError
        For an unknown key (with a did-you-mean hint), a value the config refuses, or a
        mandatory key (``???``) left unset.
    """
    raw = split_overrides(items, command)
    check_known(raw, config_keys(config), command)
    OmegaConf.set_struct(config, True)
    changes = _dotlist(raw, command)
    try:
        merged = OmegaConf.merge(config, changes)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{command}: invalid setting: {err.msg}") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise ConfigError(
            f"{command}: missing {', '.join(missing)}",
            hint="set " + " ".join(f"{key}=..." for key in missing),
        )
    return merged


def report_errors(job: Callable[[], int], *, config_status: int = 1) -> int:
    """Run ``job``; print a :class:`NeurodecodeError` as one paragraph and return a status.

    Parameters
    ----------
    job : callable
        The command's work; returns its exit status.
    config_status : int
        Status for a :class:`~neurodecode.errors.ConfigError` (an invalid command line or
        config); other errors give 1.
    """
    try:
        return job()
    except NeurodecodeError as err:
        print(one_paragraph(err), file=sys.stderr)
        return config_status if isinstance(err, ConfigError) else 1


def wants_help(argv: Sequence[str]) -> bool:
    """Whether the words ask for help (``-h`` or ``--help``)."""
    return any(arg in ("-h", "--help") for arg in argv)


def setup_logging() -> None:
    """Log messages of level INFO and above to stderr, one line each."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


Command = tuple[Callable[[dict[str, Any]], int], tuple[Option, ...]]
"""A sub-command: the job (typed options in, exit status out) and the options it takes."""


def commands_usage(prog: str, summary: str, commands: Mapping[str, Command]) -> list[str]:
    """``--help`` lines: the usage, then each sub-command with its keys."""
    lines = [f"usage: {prog} <command> key=value ...", "", summary + ".", ""]
    for name, (job, options) in commands.items():
        lines += [
            usage_line(f"{prog} {name}", options),
            f"  {(job.__doc__ or '').strip().replace('``', '')}",
        ]
        lines += [describe_options(options), ""]
    return lines


def run_command(argv: Sequence[str], commands: Mapping[str, Command], prog: str, usage: str) -> int:
    """Run the sub-command named by ``argv[0]`` with the options ``argv[1:]``.

    Prints ``usage`` for ``--help`` (status 0) or no words (status 2); otherwise returns
    the job's status, or 1 after printing an error as one paragraph.
    """
    if not argv or wants_help(argv):
        print(usage)
        return 0 if argv else 2
    setup_logging()

    def job() -> int:
        action, options = pick(argv[0], commands, prog)
        return action(parse_options(argv[1:], options, f"{prog} {argv[0]}"))

    return report_errors(job)


def pick(name: str, commands: Mapping[str, Any], command: str) -> Any:
    """``commands[name]``, or a :class:`ConfigError` naming the closest command names."""
    if name not in commands:
        raise ConfigError(f"{command}: unknown command {name!r}", hint=did_you_mean(name, commands))
    return commands[name]
