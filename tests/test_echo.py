"""Line echo in stereo calls: measured, cancelled, and never taken for the other party's speech.

Real speech (magicdata) in G.711 A-law, telephone band, each party's voice coming back in the
other's channel at −15…−35 dB, 2–60 ms late through a band-limited, two-reflection echo path, with
a quiet agent (the hard case: the customer's echo is nearly as loud as the agent's own voice) and
an agent cutting in on the customer (double talk must survive)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from callsim import load_clip
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


@pytest.mark.parametrize("kernel_len", [1280, 641, 97])
def test_the_echo_convolution_piece_by_piece_equals_scipys_overlap_add(
    kernel_len: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ten-minute window's echo is convolved a few blocks at a time, last piece first: the same
    float32 numbers as oaconvolve over the whole window, for signals that end anywhere within a
    piece or a block, and each piece from the signal up to its own end only."""
    from scipy.signal import oaconvolve

    from pipeline.diarize import convolution

    rng = np.random.default_rng(kernel_len)
    kernel = (rng.normal(size=kernel_len) * np.exp(-np.arange(kernel_len) / 200)).astype(np.float32)
    block, step = convolution.oa_block(kernel_len)
    monkeypatch.setattr(convolution, "PIECE_BLOCKS", 3)
    piece = 3 * step
    lengths = [piece + 2 * block - 1, piece + 2 * block, 4 * piece, 4 * piece + 1, 5 * piece + 2 * block - 7]
    for n in lengths + [int(x) for x in rng.integers(piece, 9 * piece, 4)]:
        signal = (rng.normal(size=n) * 0.1).astype(np.float32)
        expected = oaconvolve(signal, kernel)[:n]
        assert np.array_equal(convolution.convolve(signal, kernel), expected), n
        # written over as it goes, from the end (as the echo canceller does): no piece reads it
        scratch = signal.copy()
        offsets = []
        for offset, samples in convolution.convolve_pieces(scratch, kernel):
            assert np.array_equal(samples, expected[offset : offset + len(samples)]), (n, offset)
            scratch[offset:] = np.nan
            offsets.append(offset)
        assert offsets == sorted(offsets, reverse=True) and offsets[-1] == 0
        assert len(offsets) == (1 if n < piece + 2 * block else max(1, (n - 2 * block) // piece + 1))


def test_music_is_found_on_the_echo_free_channels_and_rings_on_the_channels_as_recorded() -> None:
    """Hold music played on the agent's side leaks into the customer's channel like the agent's
    voice does: that leak is echo, not music of the customer's channel. Ringback sits on the
    customer's channel only; cancelling the echo would put a faint inverted copy of it into the
    agent's channel, so rings are counted on the channels as recorded."""
    import csv

    from conftest import MAGICDATA

    from pipeline.metrics import detect_audio_events
    from pipeline.process import audio_events
    from pipeline.records import CallAudio

    rate = 16000
    rng = np.random.default_rng(5)
    with (MAGICDATA / "transcripts.tsv").open(encoding="utf-8") as handle:
        files = [row["file"] for row in csv.DictReader(handle, delimiter="\t")][:8]
    speech = np.concatenate([load_clip(MAGICDATA / name, "").audio for name in files]).astype(np.float32)
    n = 70 * rate
    agent = np.zeros(n, np.float32)
    customer = np.zeros(n, np.float32)
    ringback = np.zeros(n, np.float32)  # 1 s on / 4 s off, heard by the caller before the answer
    t = np.arange(int(rate * 1.0)) / rate
    for k in range(3):
        ringback[k * 5 * rate : k * 5 * rate + len(t)] += (0.2 * np.sin(2 * np.pi * 450 * t)).astype(
            np.float32
        )
    talk = speech[: 20 * rate]
    customer[15 * rate : 15 * rate + len(talk)] += talk  # the customer explains (15–35 s)
    hold = np.arange(25 * rate) / rate  # then hold music on the agent's side (40–65 s)
    notes = np.repeat([262.0, 330.0, 392.0, 523.0, 494.0], 5 * rate)[: len(hold)]
    agent[40 * rate : 65 * rate] += (0.1 * np.sin(2 * np.pi * notes * hold)).astype(np.float32)
    delay = int(0.012 * rate)
    leak = 10 ** (-20 / 20)
    agent_heard, customer_heard = agent.copy(), customer.copy()
    agent_heard[delay:] += leak * customer[:-delay]
    customer_heard[delay:] += leak * agent[:-delay]
    tracks = {
        "agent": agent_heard + rng.normal(0, 1e-4, n).astype(np.float32),
        "customer": customer_heard + ringback + rng.normal(0, 1e-4, n).astype(np.float32),
    }

    def call() -> CallAudio:
        copies = {role: track.copy() for role, track in tracks.items()}
        return CallAudio("c", rate, copies, "stereo-agent-left", "config", rate, 2, "WAV", n / rate)

    settings = Settings()
    as_recorded = detect_audio_events(call(), settings.acoustic)
    assert {e.channel for e in as_recorded if e.kind == "music"} == {"agent", "customer"}  # the leak
    events, cleaned = audio_events(call(), settings)
    music = [e for e in events if e.kind == "music"]
    assert [e.channel for e in music] == ["agent"]
    assert music[0].start == pytest.approx(40, abs=1.1) and music[0].end == pytest.approx(65, abs=1.1)
    rings = [e for e in events if e.kind == "ring"]
    assert [(e.channel, round(e.start)) for e in rings] == [
        ("customer", 0),
        ("customer", 5),
        ("customer", 10),
    ]
    assert float(np.std(cleaned.tracks["customer"][50 * rate : 60 * rate])) < 0.3 * float(
        np.std(tracks["customer"][50 * rate : 60 * rate])
    )
