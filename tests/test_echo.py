"""Line echo in stereo calls: measured, cancelled, and never taken for the other party's speech.

Real speech (magicdata) in G.711 A-law, telephone band, each party's voice coming back in the
other's channel at −15…−35 dB, 2–60 ms late through a band-limited, two-reflection echo path, with
a quiet agent (the hard case: the customer's echo is nearly as loud as the agent's own voice) and
an agent cutting in on the customer (double talk must survive)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from echocall import make_echo_call

from pipeline.config import Settings
from pipeline.diarize.echo import cancel_echo
from pipeline.diarize.stereo import diarize_stereo
from pipeline.ingest import decode, read_meta


def _frames(activity: tuple, role: str, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for v in activity:
        if v.speaker == role:
            mask[int(v.start * 10) : int(np.ceil(v.end * 10))] = True
    return mask


@pytest.mark.parametrize(("level_db", "delay_ms"), [(-15, 60), (-15, 2), (-25, 20), (-35, 60)])
def test_echo_is_cancelled_and_roles_stay_right(tmp_path: Path, level_db: float, delay_ms: float) -> None:
    settings = Settings()
    call = make_echo_call(tmp_path, level_db, delay_ms, quiet_agent_db=-12)
    audio = decode(call.path, read_meta(call.path, settings.input), settings.input, settings.intake)
    cleaned, paths = cancel_echo(audio, settings.stereo.echo_max_delay_s, settings.stereo.echo_min_erle_db)
    activity = diarize_stereo(cleaned, settings.stereo, settings.turns).voice_activity
    n = len(call.agent_speech)
    agent, customer = _frames(activity, "agent", n), _frames(activity, "customer", n)
    truth_agent, truth_customer = call.agent_speech, call.customer_speech
    speech = truth_agent | truth_customer
    accuracy = float(np.mean(((agent == truth_agent) & (customer == truth_customer))[speech]))
    assert accuracy >= 0.98
    # at most a boundary frame (0.1 s frames of the truth against the detector's own edges)
    assert np.sum(agent & truth_customer & ~truth_agent) <= 1, "the customer's echo taken for the agent"
    assert np.sum(customer & truth_agent & ~truth_customer) <= 1, "the agent's echo taken for the customer"
    double_talk = truth_agent & truth_customer
    assert np.sum(double_talk) >= 3
    assert np.mean((agent & customer)[double_talk]) >= 0.8, "the interruption (double talk) is kept"
    echo_into_agent = next(p for p in paths if p.target == "agent")
    assert echo_into_agent.cancelled
    assert abs(echo_into_agent.delay_s - delay_ms / 1000) <= 0.002
    assert abs(echo_into_agent.level_db - level_db) <= 3.0


def test_a_call_without_echo_is_left_as_it_is(tmp_path: Path) -> None:
    settings = Settings()
    call = make_echo_call(tmp_path, -90, 20)
    audio = decode(call.path, read_meta(call.path, settings.input), settings.input, settings.intake)
    cleaned, paths = cancel_echo(audio)
    assert not any(p.cancelled for p in paths)
    for role in audio.tracks:
        assert cleaned.tracks[role] is audio.tracks[role]


def test_cancelling_window_by_window_equals_the_whole_call_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both channels cleaned in 2-second windows (the ten-minute windows of a long recording, scaled
    down), written over the call's own tracks: the same as subtracting each echo over the whole
    call from the original channels in one convolution."""
    from scipy.signal import oaconvolve

    from pipeline.diarize import echo

    settings = Settings()
    call = make_echo_call(tmp_path, -15, 20)
    audio = decode(call.path, read_meta(call.path, settings.input), settings.input, settings.intake)
    original = {role: track.copy() for role, track in audio.tracks.items()}
    copied, paths = cancel_echo(audio)
    assert sum(p.cancelled for p in paths) >= 1
    monkeypatch.setattr(echo, "_WINDOW_S", 2)
    assert len(audio.tracks["agent"]) > 5 * 2 * audio.sample_rate
    windowed, windowed_paths = cancel_echo(audio, in_place=True)
    assert windowed_paths == paths
    for path in paths:
        target = path.target
        assert windowed.tracks[target] is audio.tracks[target]  # written over, no copy
        if not path.cancelled:
            assert np.array_equal(windowed.tracks[target], original[target])
            continue
        plan = echo._measure(
            original[path.source], original[target], audio.sample_rate, path.source, target, 0.08, 3.0
        )
        assert plan.impulse is not None
        whole = original[target] - oaconvolve(original[path.source], plan.impulse)[: len(original[target])]
        assert np.max(np.abs(windowed.tracks[target] - whole)) < 1e-5
        assert np.max(np.abs(copied.tracks[target] - whole)) < 1e-5
        assert not np.array_equal(windowed.tracks[target], original[target])


def test_a_call_of_one_window_is_cleaned_with_the_measurement_s_own_subtraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The echo of a call shorter than a window is subtracted once, while it is measured, and the
    channel it leaves is the one the window-by-window subtraction gives, bit for bit."""
    from dataclasses import replace

    from pipeline.diarize import echo

    settings = Settings()
    call = make_echo_call(tmp_path, -15, 20)
    audio = decode(call.path, read_meta(call.path, settings.input), settings.input, settings.intake)
    subtracted: list[int] = []
    real_residual, real_measure = echo._residual, echo._measure
    monkeypatch.setattr(echo, "_residual", lambda *a: subtracted.append(1) or real_residual(*a))
    once, paths = cancel_echo(audio)
    assert sum(p.cancelled for p in paths) >= 1 and subtracted == []
    monkeypatch.setattr(echo, "_measure", lambda *a: replace(real_measure(*a), residual=None))
    again, _ = cancel_echo(audio)
    assert len(subtracted) == sum(p.cancelled for p in paths)
    for role in audio.tracks:
        assert np.array_equal(once.tracks[role], again.tracks[role])
