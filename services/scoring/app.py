"""The scoring service process: `sn51 service scoring` runs this `SPEC` with the shared runtime.

The pure `ScoringCore` folds the input; the runtime stores each accepted event in the inbox, its derived
events in the outbox and, in the same transaction, the read model (`services.scoring.store.project`); the
read API (`services.scoring.api`) answers on port 8151 unless `SN51_API_PORT` says otherwise.
"""

from __future__ import annotations

from services.runtime.service import ServiceSpec
from services.scoring.api import router
from services.scoring.core import ScoringCore
from services.scoring.store import MIGRATIONS, project

SPEC = ServiceSpec(
    name="scoring",
    core_factory=ScoringCore,
    migrations=MIGRATIONS,
    project=project,
    router=router,
    api_port=8151,
)
