"""The AAE hyperparameter space of the paper (Table 1) and its named configurations.

A configuration is a plain dict with exactly the nine keys of `SEARCH_SPACE`, so it can be
passed around as keras-tuner hyperparameter values and stored as JSON.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType

from aae.errors import AAEError

NK1: tuple[int, ...] = (32, 64, 128, 256)
NK2: tuple[int, ...] = (32, 64, 128, 256)
NK3: tuple[int, ...] = (128, 256, 512, 1024)
NK4: tuple[int, ...] = (128, 256, 512, 1024)
KE: tuple[int, ...] = (3, 5, 7)
KD: tuple[int, ...] = (3, 5, 7)
OPT: tuple[str, ...] = ("Adam", "Momentum", "SGD")
MB: tuple[int, ...] = (32, 64, 128)
LR: tuple[float, ...] = (2e-2, 2e-3, 2e-4, 2e-5)

#: Hyperparameter name -> allowed values, in the order of Table 1 (82,944 configurations).
SEARCH_SPACE: Mapping[str, tuple] = MappingProxyType(
    {
        "NK1": NK1,
        "NK2": NK2,
        "NK3": NK3,
        "NK4": NK4,
        "KE": KE,
        "KD": KD,
        "OPT": OPT,
        "MB": MB,
        "LR": LR,
    }
)

#: The original AAE paper's network (Table 3, "Sundermeyer").
SUNDERMEYER: dict = {
    "NK1": 128,
    "NK2": 256,
    "NK3": 256,
    "NK4": 512,
    "KE": 5,
    "KD": 5,
    "OPT": "Adam",
    "MB": 64,
    "LR": 2e-4,
}
#: The public DLR train_template.cfg network (Table 3, "BOP").
BOP: dict = {**SUNDERMEYER, "NK3": 512}
#: The best configuration of the 800-iteration search (section 3.5, "NAS-2").
NAS2: dict = {
    "NK1": 256,
    "NK2": 64,
    "NK3": 1024,
    "NK4": 1024,
    "KE": 7,
    "KD": 3,
    "OPT": "Adam",
    "MB": 128,
    "LR": 2e-3,
}
#: The searched network with the lowest real final loss (section 3.5, "MinLoss-2").
MINLOSS2: dict = {**NAS2, "NK1": 64, "NK2": 64, "KD": 7}
#: The searched network with the highest ADD recall (section 3.5, "MaxADD-2").
MAXADD2: dict = {**NAS2, "NK2": 256, "NK3": 512, "KE": 3}

NAMED_CONFIGS: Mapping[str, dict] = MappingProxyType(
    {"SUNDERMEYER": SUNDERMEYER, "BOP": BOP, "NAS2": NAS2, "MINLOSS2": MINLOSS2, "MAXADD2": MAXADD2}
)


def _same_value(allowed: object, value: object) -> bool:
    # bool is an int subclass: True must not pass as 1.
    if isinstance(value, bool) or isinstance(value, str) != isinstance(allowed, str):
        return False
    if isinstance(allowed, float):
        # A float32 learning rate (e.g. from a numpy sampler) is not bit-equal to 2e-3.
        return isinstance(value, numbers.Real) and math.isclose(allowed, float(value), rel_tol=1e-6)
    return allowed == value


def validate_config(config: Mapping[str, object]) -> dict:
    """Check that `config` is a point of `SEARCH_SPACE` and return it as a plain dict.

    The returned values are the canonical Python values from the space (so numpy scalars
    from a sampler become JSON-safe ints/floats). Raises one ValueError naming every
    missing or unknown key, or the first value outside the space with its allowed values.
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"An AAE config must be a mapping of the nine hyperparameters {list(SEARCH_SPACE)}, "
            f"got {type(config).__name__}."
        )
    missing = [name for name in SEARCH_SPACE if name not in config]
    unknown = [name for name in config if name not in SEARCH_SPACE]
    if missing or unknown:
        raise AAEError(
            f"AAE config keys must be exactly {list(SEARCH_SPACE)}: "
            f"missing {missing}, unknown {unknown}. Start from a named config, e.g. "
            f"{{**aae.net.configs.SUNDERMEYER, 'LR': 2e-3}}."
        )
    canonical = {}
    for name, allowed in SEARCH_SPACE.items():
        value = config[name]
        matches = [v for v in allowed if _same_value(v, value)]
        if not matches:
            raise AAEError(
                f"AAE config value {name}={value!r} is outside the search space; "
                f"allowed values for {name}: {list(allowed)}."
            )
        canonical[name] = matches[0]
    return canonical
