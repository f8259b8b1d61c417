"""Experiment configs: one ml_collections ConfigDict per file, each with a `smoke` variant for tests."""


def override_fields(config, values):
  """Sets every field of `config`'s sections (model, data, train, ...) whose name is a key of `values`."""
  for section in config.values():
    for field in section:
      if field in values:
        section[field] = values[field]
