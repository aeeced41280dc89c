"""Whisper loop guards: CER and speed of decoding options on real speech, normal and drawn-out.

    .venv/bin/python bench/asr_guards.py [--clips 30] [--slow 0.6,0.4] [--configs before,nrng4,...]

Real recorded sentences (../shared/audio/magicdata_cs, reference transcripts) go through the
telephone band (300–3400 Hz, 8 kHz, back to the 16 kHz the pipeline decodes) and, for the
drawn-out condition, a time stretch (librosa phase vocoder, `--slow` of the original speed: every
syllable dragged). Five sentences make one party's track with pauses between them, recognised
exactly as the batch does it (`transcribe_turns`: turns laid end to end, one pass, per-turn
utterances), once per decoding configuration. Reported per condition: CER (all text pooled),
utterances our loop detector flags, windows decoded again at a higher temperature, and audio
seconds per wall second. Results go to bench/results/asr-guards-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import date
from math import gcd
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.asr import load_recognizer, transcribe_turns  # noqa: E402
from pipeline.config import AsrConfig  # noqa: E402
from pipeline.evaluate import character_error_rate  # noqa: E402
from pipeline.records import SpeechTurn, Utterance  # noqa: E402
from pipeline.rules.evidence import unreliable, weak_evidence  # noqa: E402
from pipeline.rules.schema import Matching  # noqa: E402
from pipeline.rules.transcript import Line  # noqa: E402
from pipeline.text import normalize  # noqa: E402

CORPUS = ROOT.parent / "shared" / "audio" / "magicdata_cs"
RATE = 16000
PAUSE_S = 1.2  # between sentences of one track: longer than a breath, shorter than a hold
PER_TRACK = 5

# The handbook's service phrases as one agent would say them (asr.hotwords, measured 2026-11-30)
HANDBOOK_HOTWORDS = (
    "您好，客户服务中心，请问有什么可以帮到您？请您稍等，我帮您查询核实一下。感谢您的耐心等待，"
    "让您久等了。请问还有其他问题需要咨询吗？感谢您的来电，祝您生活愉快。请您稍后对本次服务进行评价，再见。"
)
# whisper's temperature fallback (the pipeline's default until 2026-11-29)
_FALLBACK = {"temperatures": (0.0, 0.2, 0.4, 0.6)}
_NO_RETRY = {"loop_retry_no_repeat_ngram_size": 0, **_FALLBACK}
CONFIGS: dict[str, dict] = {
    # what the pipeline did before this bench: fallback to 0.6, whisper's default thresholds
    "before": _NO_RETRY,
    "greedy": {**_NO_RETRY, "temperatures": (0.0,)},
    "nrng4": {**_NO_RETRY, "no_repeat_ngram_size": 4},
    "rep1.1": {**_NO_RETRY, "repetition_penalty": 1.1},
    "hst2": {**_NO_RETRY, "hallucination_silence_threshold": 2.0},
    "cr2.0": {**_NO_RETRY, "compression_ratio_threshold": 2.0},
    # a looping turn is decoded again alone with 3-gram repeats blocked, with the fallback
    "retry3": {**_FALLBACK},
    # the defaults now: the same without the fallback (beam search only: repeatable)
    "retry3-greedy": {},
    # both parties' turns packed into ≤ 30 s windows, several windows per encoder/decoder call
    # (faster-whisper's BatchedInferencePipeline: no timestamp tokens, no temperature fallback)
    "batch4": {"batch_size": 4, "batch_timestamps": False},
    "batch8": {"batch_size": 8, "batch_timestamps": False},
    # the same with timestamp tokens: segments end inside a window, as in sequential decoding
    "batch4ts": {"batch_size": 4, "batch_timestamps": True},
    # narrower beam search than whisper's 5 (the defaults otherwise): less decoding per window
    "beam1": {"beam_size": 1},
    "beam2": {"beam_size": 2},
    "beam3": {"beam_size": 3},
    # whisper told to expect the handbook's service phrases in every window (asr.hotwords)
    "hotwords": {"hotwords": HANDBOOK_HOTWORDS},
    "no-hotwords": {"hotwords": ""},
    "hotwords-short": {"hotwords": "稍等 久等 感谢 来电 愉快 评价 打分"},
}
# A sentence whose text is this wrong is one a rule should not judge by; the evidence should say so.
BAD_CER = 0.5
GOOD_CER = 0.2


@dataclass
class Track:
    signal: np.ndarray
    turns: list[SpeechTurn]
    texts: list[str]


def _resample(signal: np.ndarray, src: int, dst: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = gcd(src, dst)
    return resample_poly(signal, dst // g, src // g).astype(np.float32)


def telephone(signal: np.ndarray) -> np.ndarray:
    """300–3400 Hz band, 8 kHz, back to 16 kHz: what a G.711 call sounds like to the pipeline."""
    from scipy.signal import butter, sosfilt

    band = sosfilt(butter(6, [300, 3400], btype="band", fs=RATE, output="sos"), signal)
    return _resample(_resample(band.astype(np.float32), RATE, 8000), 8000, RATE)


def load(files: list[str], slow: float | None) -> np.ndarray:
    import librosa
    import soundfile as sf

    out = []
    for name in files:
        audio, rate = sf.read(str(CORPUS / name), dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if rate != RATE:
            audio = _resample(audio, rate, RATE)
        if slow is not None:
            audio = librosa.effects.time_stretch(audio, rate=slow)
        audio = telephone(audio)
        out.append(audio * (0.5 / (float(np.abs(audio).max()) or 1.0)))
    return out


def tracks(rows: list[tuple[str, str]], slow: float | None, per_track: int = PER_TRACK) -> list[Track]:
    built = []
    for i in range(0, len(rows), per_track):
        group = rows[i : i + per_track]
        clips = load([name for name, _ in group], slow)
        pause = np.zeros(int(PAUSE_S * RATE), np.float32)
        pieces, turns, cursor = [pause], [], PAUSE_S
        for clip in clips:
            turns.append(SpeechTurn("agent", round(cursor, 3), round(cursor + len(clip) / RATE, 3)))
            pieces += [clip, pause]
            cursor += (len(clip) + len(pause)) / RATE
        built.append(Track(np.concatenate(pieces), turns, [text for _, text in group]))
    return built


def heard_per_turn(utterances: list[Utterance], turns: list[SpeechTurn]) -> list[list[Utterance]]:
    out: list[list[Utterance]] = [[] for _ in turns]
    for u in utterances:
        best = max(range(len(turns)), key=lambda k: min(u.end, turns[k].end) - max(u.start, turns[k].start))
        out[best].append(u)
    return out


def run(name: str, options: dict, condition: list[Track], seconds: float) -> dict:
    config = AsrConfig(**options)
    recognizer = load_recognizer(config)
    counter = _FallbackCounter()
    logging.getLogger("faster_whisper").addHandler(counter)
    started = time.perf_counter()
    refs, hyps, flagged, looping, examples, details = [], [], [], 0, [], []
    matching = Matching()
    for track in condition:
        utterances = transcribe_turns(track.signal, RATE, track.turns, recognizer)
        for text, heard in zip(track.texts, heard_per_turn(utterances, track.turns), strict=True):
            said = "".join(u.text for u in heard)
            refs.append(normalize(text))
            hyps.append(normalize(said))
            reasons = [r for u in heard if (r := unreliable(Line(0, u), matching))]
            flagged.append(bool(reasons))
            details.append(
                {
                    "cer": round(character_error_rate(refs[-1], hyps[-1]), 3),
                    "unreliable": "；".join(reasons),
                    "evidence": [
                        [
                            u.confidence,
                            u.avg_logprob,
                            u.no_speech_prob,
                            u.compression_ratio,
                            u.looping,
                            u.unheard_s,
                        ]
                        for u in heard
                    ],
                }
            )
            if any(u.looping for u in heard):
                looping += 1
                examples.append(said)
    wall = time.perf_counter() - started
    logging.getLogger("faster_whisper").removeHandler(counter)
    cer = character_error_rate("".join(refs), "".join(hyps))
    cers = [character_error_rate(r, h) for r, h in zip(refs, hyps, strict=True)]
    bad = [f for c, f in zip(cers, flagged, strict=True) if c > BAD_CER]
    good = [f for c, f in zip(cers, flagged, strict=True) if c < GOOD_CER]
    worst = sorted(
        ((character_error_rate(r, h), r, h) for r, h in zip(refs, hyps, strict=True)), reverse=True
    )[:3]
    return {
        "config": name,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        "cer": round(cer, 4),
        "sentences": len(refs),
        "looping_sentences": looping,
        "looping_examples": examples[:3],
        "flagged_sentences": sum(flagged),
        "bad_sentences": len(bad),
        "bad_flagged": sum(bad),
        "good_sentences": len(good),
        "good_flagged": sum(good),
        "fallback_windows": counter.fallbacks,
        "audio_s_per_wall_s": round(seconds / wall, 2),
        "worst": [{"cer": round(c, 3), "truth": r, "heard": h} for c, r, h in worst],
        "sentences_detail": details,
    }


class _FallbackCounter(logging.Handler):
    """Counts windows faster-whisper decoded again (its debug log says why)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.fallbacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "threshold is not met with temperature" in message:
            self.fallbacks += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--slow", default="0.6,0.4", help="speeds of the drawn-out conditions")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", default=f"asr-guards-{date.today().isoformat()}", help="file name stem")
    parser.add_argument("--per-track", type=int, default=PER_TRACK, help="sentences recognised in one pass")
    parser.add_argument(
        "--reflag", action="store_true", help="judge the stored evidence again by today's scorecard limits"
    )
    args = parser.parse_args()
    logging.getLogger("faster_whisper").setLevel(logging.DEBUG)
    logging.getLogger("faster_whisper").propagate = False
    lines = (CORPUS / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = sorted((f, t) for f, _, t in (line.split("\t") for line in lines))
    step = max(1, len(rows) // args.clips)
    chosen = rows[::step][: args.clips]
    conditions = {"normal": tracks(chosen, None, args.per_track)}
    for speed in (float(x) for x in args.slow.split(",") if x):
        conditions[f"slow x{speed:g}"] = tracks(chosen, speed, args.per_track)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / args.name
    if args.reflag:
        write(stem, reflag(json.loads(stem.with_suffix(".json").read_text(encoding="utf-8")), conditions))
        return
    results = []
    for label, condition in conditions.items():
        seconds = sum(len(t.signal) for t in condition) / RATE
        for name in args.configs.split(","):
            result = {
                "condition": label,
                "audio_s": round(seconds, 1),
                **run(name, CONFIGS[name], condition, seconds),
            }
            print(
                json.dumps({k: v for k, v in result.items() if k != "sentences_detail"}, ensure_ascii=False)
            )
            results.append(result)
            write(stem, results)  # after each run: a long bench stopped early keeps what it measured


PREAMBLE = """# Whisper loop guards on real speech (bench/asr_guards.py)

30 real customer-service sentences (magicdata_cs, every 8th), telephone band (300–3400 Hz, 8 kHz),
five to a track with 1.2 s pauses, recognised as the batch does (`transcribe_turns`); "slow xF" is
the same audio time-stretched to F of its speed (librosa phase vocoder: every syllable dragged).
CER pools all text (normalised as `callqa eval` does). "looping": our detector
(`pipeline/asr/guards.py`) flags a heard sentence; "flagged unreliable": any of its utterances
beyond the default scorecard's `asr_*` limits (docs/scorecard.md); "of CER > 0.5 flagged": how many
badly recognised sentences the evidence catches, "of CER < 0.2 flagged": how many good ones it
sends to review needlessly. "windows decoded again": faster-whisper's temperature fallbacks.
Throughput is noisy: 2 shared cores, other jobs running.

What each option does in faster-whisper 1.2.1 (`faster_whisper/transcribe.py`,
`generate_with_fallback` and `generate_segments`):

* `compression_ratio_threshold` (2.4), `log_prob_threshold` (-1.0): tested per 30 s window after
  decoding; above / below, the window is decoded again at the next temperature (sampling,
  `best_of` candidates); if every temperature fails, the candidate with the best avg_logprob
  among those under the compression limit is kept. With `temperatures=(0,)` nothing is re-decoded.
  The pipeline lays a party's turns end to end, so one window holds several turns and a loop in a
  short turn hardly moves the window's ratio (a 3-character loop in a 30-character window).
* `no_speech_threshold` (0.6): with avg_logprob under `log_prob_threshold`, a window whose
  no-speech probability is above it is skipped as silence (no fallback, no text).
* `no_repeat_ngram_size`: CTranslate2 bans any token n-gram from repeating, in every window at
  every temperature — digits (幺三八幺三八) and 好的好的 included.
* `repetition_penalty`: lowers the score of every token already produced in the window, at
  every temperature.
* `hallucination_silence_threshold` (needs word timestamps): a segment whose words look
  anomalous (probability < 0.15, very short or > 2 s long) and that sits between silences longer
  than this is dropped, and decoding continues after it.
* `retry3` (ours, `asr.loop_retry_no_repeat_ngram_size = 3`): only a turn whose text our detector
  finds looping is decoded again on its own with 3-gram repeats banned; the text that loops less
  is kept, a loop that stays is flagged.

"""


def reflag(results: list[dict], conditions: dict[str, list[Track]]) -> list[dict]:
    """The flag columns again from each sentence's stored evidence, by the default scorecard's
    limits as they are now (the recognition is not repeated)."""
    matching = Matching()
    for r in results:
        turns = [t for track in conditions[r["condition"]] for t in track.turns]
        flags = []
        for turn, d in zip(turns, r["sentences_detail"], strict=True):
            heard = [
                Utterance(
                    "agent",
                    turn.start,
                    turn.end,
                    "",
                    (),
                    confidence,
                    avg_logprob=logprob,
                    no_speech_prob=no_speech,
                    compression_ratio=ratio,
                    looping=looping,
                    unheard_s=unheard,
                )
                for confidence, logprob, no_speech, ratio, looping, unheard in d["evidence"]
            ]
            reasons = [x for u in heard if (x := weak_evidence(u, matching, recognised=True))]
            d["unreliable"] = "；".join(reasons)
            flags.append((d["cer"], bool(reasons)))
        r["flagged_sentences"] = sum(f for _, f in flags)
        r["bad_sentences"] = sum(1 for c, _ in flags if c > BAD_CER)
        r["bad_flagged"] = sum(1 for c, f in flags if c > BAD_CER and f)
        r["good_sentences"] = sum(1 for c, _ in flags if c < GOOD_CER)
        r["good_flagged"] = sum(1 for c, f in flags if c < GOOD_CER and f)
    return results


def write(stem: Path, results: list[dict]) -> None:
    stem.with_suffix(".json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    table = [
        PREAMBLE,
        "| condition | config | CER | looping sentences | flagged unreliable | of CER > 0.5 flagged "
        "| of CER < 0.2 flagged | windows decoded again | audio s / wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    table += [
        f"| {r['condition']} | {r['config']} | {r['cer']:.3f} | {r['looping_sentences']}/{r['sentences']} "
        f"| {r['flagged_sentences']}/{r['sentences']} | {r['bad_flagged']}/{r['bad_sentences']} "
        f"| {r['good_flagged']}/{r['good_sentences']} | {r['fallback_windows']} | {r['audio_s_per_wall_s']} |"
        for r in results
    ]
    stem.with_suffix(".md").write_text("\n".join(table) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
