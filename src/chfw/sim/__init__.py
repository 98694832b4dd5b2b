"""The CSP/estate simulator: a synthetic estate, a firmware wave as GBCS bytes, a CSP poster.

``generate_estate`` and ``generate_wave`` are pure and reproducible from a
seed; ``Wave.ground_truth`` says what chfw must make of the wave, counted from
the simulator's intent; ``post_wave`` sends it to the intake over HTTP.
"""

from chfw.sim.estate import (
    DEFAULT_SUPPLIERS,
    INITIAL_FIRMWARE,
    REGIONS,
    EstateMix,
    SimHub,
    SimSupplier,
    SyntheticEstate,
    generate_estate,
)
from chfw.sim.files import (
    read_suppliers_json,
    write_estate_csv,
    write_estate_json,
    write_suppliers_json,
)
from chfw.sim.poster import PostStats, RetryPolicy, post_wave, post_wave_async
from chfw.sim.truth import GroundTruth, count_ground_truth
from chfw.sim.wave import (
    DEFAULT_COMMANDER,
    DEFAULT_SCHEDULED_AT,
    DEFAULT_TARGET,
    HubActivation,
    InventoryStart,
    MessageKind,
    Wave,
    WaveMessage,
    WaveMix,
    generate_wave,
    simulator_device_key,
)

__all__ = [
    "DEFAULT_COMMANDER",
    "DEFAULT_SCHEDULED_AT",
    "DEFAULT_SUPPLIERS",
    "DEFAULT_TARGET",
    "INITIAL_FIRMWARE",
    "REGIONS",
    "EstateMix",
    "GroundTruth",
    "HubActivation",
    "InventoryStart",
    "MessageKind",
    "PostStats",
    "RetryPolicy",
    "SimHub",
    "SimSupplier",
    "SyntheticEstate",
    "Wave",
    "WaveMessage",
    "WaveMix",
    "count_ground_truth",
    "generate_estate",
    "generate_wave",
    "post_wave",
    "post_wave_async",
    "read_suppliers_json",
    "simulator_device_key",
    "write_estate_csv",
    "write_estate_json",
    "write_suppliers_json",
]
