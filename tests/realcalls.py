"""Two-party telephone calls built from real speech (../shared/audio/magicdata_cs), for tests.

The corpus has one (female, agent-style) speaker; the customer is the same corpus lowered in
pitch and formants (a different-sounding voice to people and to speaker embeddings).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from callsim import CallScript, load_clip, write_call
from conftest import MAGICDATA

AGENT_LINES = [
    "general_400005.flac",
    "insurance_000013.flac",
    "finance_200008.flac",
    "tourism_300012.flac",
    "education_100010.flac",
]
CUSTOMER_LINES = [
    "general_400008.flac",
    "tourism_300019.flac",
    "finance_200016.flac",
    "insurance_000020.flac",
]


def build_real_call(
    folder: Path, name: str, texts: dict[str, str], stereo: bool, leak_db: float = -24.0, seed: int = 7
) -> Path:
    """agent, customer, agent cuts in on the customer, customer, agent, customer (~60 s, 8 kHz)."""

    def agent(i: int):
        return load_clip(MAGICDATA / AGENT_LINES[i], texts[AGENT_LINES[i]])

    def customer(i: int):
        return load_clip(MAGICDATA / CUSTOMER_LINES[i], texts[CUSTOMER_LINES[i]], warp=0.78)

    script = CallScript(call_id=name, seed=seed)
    script.ring(2)
    script.say("agent", agent(0), gap=0.5)
    script.say("customer", customer(0))
    script.say("agent", agent(1))
    script.say("customer", customer(1))
    script.cut_in("agent", agent(2), into=1.2)  # a real interruption: 1.2 s of overlap
    script.say("customer", customer(2))
    script.say("agent", agent(3))
    script.say("customer", customer(3))
    script.say("agent", agent(4))
    samples, rate, truth = script.render(stereo=stereo, leak_db=leak_db)
    path = write_call(folder, f"{name}.wav", samples, rate, truth, sidecar=None)
    finished = time.time() - 3600  # a finished recording, not one the phone system is still writing
    os.utime(path, (finished, finished))
    return path
