"""Local infrastructure for development and tests: Tansu broker, PostgreSQL, anvil, the four services.

Everything it starts keeps its state (pid files, logs, data) under one folder, `.sn51/` in the checkout
(or `SN51_STATE_DIR`).
"""

from sn51.localinfra.procs import log_file, state_dir
from sn51.localinfra.stack import (
    SERVICES,
    Endpoints,
    InfraError,
    ensure_up,
    infra_down,
    infra_status,
    infra_up,
    local_endpoints,
    services_down,
    services_up,
)

__all__ = [
    "SERVICES",
    "Endpoints",
    "InfraError",
    "ensure_up",
    "infra_down",
    "infra_status",
    "infra_up",
    "local_endpoints",
    "log_file",
    "services_down",
    "services_up",
    "state_dir",
]
