"""Reading ``leadsync.yaml`` for ``leadsync serve``: the sync's settings plus ``serve:``.

The file is read once, with the loader of :mod:`scheduler.config` (``${VAR}`` and
``${file:PATH}`` substitution, secrets remembered for redaction, one
``FILE:LINE: path: problem`` line per problem). The ``serve`` section is validated
with :class:`~scheduler.serve.settings.ServeConfig` and the rest exactly as
``leadsync run`` validates it, so that both commands agree on the same file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from scheduler.config import (
    ConfigError,
    SyncConfig,
    _validate,
    located_mapping,
    read_config_text,
)
from scheduler.serve.settings import ServeConfig
from scoring.yaml_problems import model_keys, validation_problems

__all__ = ["load_serve_config", "parse_serve_config"]


def load_serve_config(
    path: str | Path, *, env: Mapping[str, str] | None = None
) -> tuple[SyncConfig, ServeConfig]:
    """The sync's configuration and its ``serve`` section; :class:`ConfigError` lists
    every problem found in either."""
    text = read_config_text(path)
    return parse_serve_config(text, source=str(path), base_dir=Path(path).parent, env=env)


def parse_serve_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: str | Path = ".",
    env: Mapping[str, str] | None = None,
) -> tuple[SyncConfig, ServeConfig]:
    loader, data = located_mapping(
        text, source=source, base_dir=base_dir, env=env, top="crm, models, serve"
    )
    section = data.pop("serve", None)
    serve: ServeConfig | None = None
    if section is None:
        loader.problem(("serve",), "missing: leadsync serve needs a serve section", key=True)
    elif not isinstance(section, dict):
        loader.problem(("serve",), "expected a mapping with public_url, hubspot, ...")
    else:
        try:
            serve = ServeConfig.model_validate(section)
        except ValidationError as exc:
            loader.more(
                validation_problems(
                    exc,
                    section,
                    loader.located,
                    source,
                    keys=model_keys(ServeConfig),
                    prefix=("serve",),
                    wording="pydantic",
                )
            )
    sync_problems: list[str] = []
    config: SyncConfig | None = None
    try:
        config = _validate(loader, data, Path(base_dir))
    except ConfigError as exc:
        sync_problems = exc.problems
    problems = sync_problems or loader.problems
    if problems:
        raise ConfigError(_by_line(problems))
    assert config is not None and serve is not None
    return config, serve


def _by_line(problems: list[str]) -> list[str]:
    """Problems in file order, each once."""

    def line(text: str) -> int:
        try:
            return int(text.split(":", 2)[1])
        except (IndexError, ValueError):
            return 0

    return sorted(dict.fromkeys(problems), key=line)
